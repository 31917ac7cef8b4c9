"""The catalogue of every rule: `all_rules` imports the rule modules so each registers its `Rule`.

The `Rule` record itself is domain (`flows/rule.py`); the technical rules live in
`flows/technical.py`, each routing and platform rule in its own module here.
"""

from __future__ import annotations

from flows.rule import REGISTRY, XSD, Rule

__all__ = ["REGISTRY", "XSD", "Rule", "all_rules"]


def all_rules() -> list[Rule]:
    """Every rule known to this process, sorted by code (imports the rule modules)."""
    import flows.technical  # noqa: F401
    import validators.platform_rules  # noqa: F401  (registers the platform rules)
    import validators.routing  # noqa: F401  (registers the routing rules)

    return sorted(REGISTRY.values(), key=lambda r: r.code)
