"""Rule records: a stable code, a flag and a message in French and English (domain layer).

Every rule Relais itself defines is a `Rule`: the technical rules (RLS-T..) in
`flows/technical.py`, each routing (RLS-R..) and platform (RLS-P..) rule in its
own module under `validators/`. Grep a code to find its home. XSD findings use
the single code `XSD`.
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
