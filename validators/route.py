"""Route one invoice: the routing rules (the runner's DIRECTORY stage) over one address.

Identification rules (``FINAL``) stop at the first breach (no point checking a
service of an unknown structure); the service and commitment rules all report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flows.domain.model import ValidationError
from flows.domain.rule import Stage
from validators import runner
from validators.addressing import Addressing
from validators.context import InvoiceContext

if TYPE_CHECKING:
    from flows.domain.structures import Directory, Structure


def check(a: Addressing, directory: Directory) -> tuple[list[ValidationError], Structure | None]:
    """Findings for `a`, and the recipient structure when it was found (an active one or not)."""
    ctx = InvoiceContext(addressing=a, directory=directory)
    return runner.run(ctx, [Stage.DIRECTORY]), ctx.recipient
