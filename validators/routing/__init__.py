"""Routing rules (RLS-R..), one module per rule, in the shape of every rule module (``RULE``,
``check(ctx)``, see `validators.runner`). `validators.route.check` runs them for one address.
"""

from validators.addressing import Addressing

__all__ = ["Addressing"]
