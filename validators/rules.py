"""The catalogue of every rule: `all_rules` imports the rule modules so each registers its `Rule`.

The `Rule` record itself is domain (`flows/domain/rule.py`); the technical rules live in
`flows/domain/technical.py`, each routing and platform rule in its own module under
`validators/routing/` and `validators/platform/` (`validators.runner` imports them all).
"""

from __future__ import annotations

from flows.domain.rule import REGISTRY, XSD, Rule

__all__ = ["REGISTRY", "XSD", "Rule", "all_rules"]


def all_rules() -> list[Rule]:
    """Every rule known to this process, sorted by code (imports the rule modules)."""
    import flows.domain.technical  # noqa: F401
    import validators.runner  # noqa: F401  # imports, hence registers, every routing and platform rule
    from validators.cdar_rules import (  # noqa: F401  # a received CDAR message's rules (RLS-C..)
        invalid_message,
        move_not_allowed,
        not_your_invoice,
        replayed,
        status_not_applied,
        unknown_invoice,
    )

    return sorted(REGISTRY.values(), key=lambda r: r.code)
