"""Rule records: a stable code, a flag and a message in French and English.

Every rule Relais itself defines is a `Rule` in `validators/technical.py`
(flow-level technical rules, RLS-T..) or in its own module under
`validators/platform/` (routing rules, RLS-R.., and platform rules, RLS-P..). Grep a code to
find its home. XSD findings use the single code `XSD`.
"""

from __future__ import annotations

import dataclasses

from flows.model import Flag, ValidationError

REGISTRY: dict[str, "Rule"] = {}


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    code: str
    flag: Flag
    message_en: str
    message_fr: str

    def __post_init__(self) -> None:
        if self.code in REGISTRY and REGISTRY[self.code] != self:
            raise ValueError(f"rule code {self.code} defined twice")
        REGISTRY[self.code] = self

    def error(self, location: str = "/", detail: str | None = None) -> ValidationError:
        """The finding of this rule at `location`; `detail` adds specifics to the message."""
        message = self.message_en if detail is None else f"{self.message_en}: {detail}"
        return ValidationError(self.code, self.flag, location, message)


XSD = Rule(
    "XSD",
    Flag.FATAL,
    "The document does not conform to its XML schema",
    "Le document n'est pas conforme à son schéma XML",
)


def all_rules() -> list[Rule]:
    """Every rule known to this process, sorted by code (imports the rule modules)."""
    import validators.platform_rules  # noqa: F401  (registers the platform rules)
    import validators.routing  # noqa: F401  (registers the routing rules)
    import validators.technical  # noqa: F401

    return sorted(REGISTRY.values(), key=lambda r: r.code)
