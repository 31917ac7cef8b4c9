"""Rule records: a stable code, a flag, a category, a stage and a message in French and English (domain layer).

Every rule Relais itself defines is a `Rule`: the technical rules (RLS-T..) in
`flows/domain/technical.py`, each routing rule (RLS-R..) in its own module under
`validators/routing/`, each platform rule (RLS-P..) under `validators/platform/`.
Grep a code to find its home. XSD findings use the single code `XSD`.

A rule declares what it is (`Category`) and what it needs to be checked
(`Stage`), so that nothing has to guess either from its code: the category
travels with each finding (`flows.domain.model.ValidationError.category`) and the
stage tells `validators.runner` where a rule can run.
"""

from __future__ import annotations

import dataclasses
import enum

from flows.domain.model import CATEGORIES, Category, Flag, ValidationError

__all__ = ["LANGUAGES", "REGISTRY", "XSD", "Category", "Rule", "Stage", "official_family"]

REGISTRY: dict[str, Rule] = {}

#: The languages of the texts Relais writes for people (rule messages, return flows' free texts).
LANGUAGES = ("fr", "en")

#: Where a code that is not in `REGISTRY` comes from: the official rule sets, whose messages are kept
#: verbatim (English); (prefix, French, English), the first matching prefix wins.
OFFICIAL_FAMILIES = (
    ("BR-FR", "Règle française de la réforme (BR-FR, XSLT officielles)", "French e-invoicing reform rule (BR-FR)"),
    ("BR-", "Règle métier de la norme EN 16931 (XSLT officielles du CEN)", "EN 16931 business rule (CEN)"),
    ("UBL-", "Règle de syntaxe UBL de la norme EN 16931 (CEN)", "EN 16931 UBL syntax rule (CEN)"),
    ("CII-", "Règle de syntaxe CII de la norme EN 16931 (CEN)", "EN 16931 CII syntax rule (CEN)"),
    ("FX-", "Règle du profil Factur-X", "Factur-X profile rule"),
)


def official_family(code: str, language: str = "fr") -> str | None:
    """What an official rule is, in `language`, for a code Relais does not define; None otherwise.

    >>> official_family("BR-CO-15"), official_family("BR-FR-12", "en"), official_family("RLS-T04")
    ('Règle métier de la norme EN 16931 (XSLT officielles du CEN)', 'French e-invoicing reform rule (BR-FR)', None)
    """
    if code in REGISTRY:
        return None
    for prefix, fr, en in OFFICIAL_FAMILIES:
        if code.startswith(prefix):
            return fr if language == "fr" else en
    return None


class Stage(enum.StrEnum):
    """What a rule needs to be checked, hence where it runs.

    - FLOW: the received file as a whole (size, container, archive safety), in the pipeline;
    - DOCUMENT: one document alone (its XML, its PDF), in a validation worker;
    - STORE: the invoices already recorded (duplicates), in the pipeline;
    - DIRECTORY: the recipient directory (routing), in the pipeline.
    """

    FLOW = "flow"
    DOCUMENT = "document"
    STORE = "store"
    DIRECTORY = "directory"


@dataclasses.dataclass(frozen=True, slots=True)
class Rule:
    """One rule; `category` and `stage` are keyword-only and required: every rule declares them."""

    code: str
    flag: Flag
    message_en: str
    message_fr: str
    category: Category = dataclasses.field(kw_only=True)
    stage: Stage = dataclasses.field(kw_only=True)

    def __post_init__(self) -> None:
        if self.code in REGISTRY and REGISTRY[self.code] != self:
            raise ValueError(f"rule code {self.code} defined twice")
        if not isinstance(self.category, Category) or not isinstance(self.stage, Stage):
            raise TypeError(f"rule {self.code}: category and stage must be a Category and a Stage")
        REGISTRY[self.code] = self
        CATEGORIES[self.code] = self.category

    def error(self, location: str = "/", detail: str | None = None) -> ValidationError:
        """The finding of this rule at `location`; `detail` adds specifics to the message."""
        message = self.message_en if detail is None else f"{self.message_en}: {detail}"
        return ValidationError(self.code, self.flag, location, message, self.category)


XSD = Rule(
    "XSD",
    Flag.FATAL,
    "The document does not conform to its XML schema",
    "Le document n'est pas conforme à son schéma XML",
    category=Category.SCHEMA,
    stage=Stage.DOCUMENT,
)
