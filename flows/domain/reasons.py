"""Refusal and suspension reasons (motifs de rejet): a versioned data file, ``reasons.csv`` beside this module.

Every refusal or suspension by an actor (recipient, validator, MOE, MOA) carries one of these codes
beside its free text; each code says which statuses it may accompany ("Erreur de montant" may not
accompany REFUSEE_MOE). `check` raises `ReasonCodeRefused` naming the codes allowed.

>>> REASONS.version, REASONS["MONTANT"].label_fr
('2026-12', 'Erreur de montant')
>>> REASONS.allows("MONTANT", InvoiceStatus.REFUSEE_MOE), REASONS.allows("AUTRE", InvoiceStatus.REFUSEE_MOE)
(False, True)
>>> needs_code(InvoiceStatus.SUSPENDUE), needs_code(InvoiceStatus.SERVICE_FAIT)
(True, False)
>>> REASONS.check("MONTANT", InvoiceStatus.REFUSEE_MOE)
Traceback (most recent call last):
    ...
flows.domain.reasons.ReasonCodeRefused: reason code 'MONTANT' may not accompany REFUSEE_MOE
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from pathlib import Path

from flows.domain.errors import RelaisError
from flows.domain.lifecycle import InvoiceStatus

DATA = Path(__file__).with_name("reasons.csv")


@dataclasses.dataclass(frozen=True, slots=True)
class Reason:
    code: str
    label_fr: str
    label_en: str
    statuses: frozenset[InvoiceStatus]

    def label(self, language: str = "fr") -> str:
        return self.label_en if language == "en" else self.label_fr


class ReasonCodeRefused(RelaisError, ValueError):
    """A reason code that is unknown, or that may not accompany this status; `allowed` names the codes that may."""

    def __init__(self, code: str | None, status: InvoiceStatus, allowed: list[str], known: bool) -> None:
        self.code, self.status, self.allowed = code, status, allowed
        if code is None:
            why = f"a reason code is required to set {status.name}"
        elif known:
            why = f"reason code {code!r} may not accompany {status.name}"
        else:
            why = f"unknown reason code {code!r}"
        super().__init__(why)


@dataclasses.dataclass(frozen=True)
class Reasons(Mapping[str, Reason]):
    version: str
    by_code: Mapping[str, Reason]

    def __getitem__(self, code: str) -> Reason:
        return self.by_code[code]

    def __iter__(self) -> Iterator[str]:
        return iter(self.by_code)

    def __len__(self) -> int:
        return len(self.by_code)

    def allows(self, code: str, status: InvoiceStatus) -> bool:
        reason = self.by_code.get(code)
        return reason is not None and status in reason.statuses

    def allowed(self, status: InvoiceStatus) -> list[str]:
        return [c for c, r in self.by_code.items() if status in r.statuses]

    def check(self, code: str | None, status: InvoiceStatus) -> Reason | None:
        """The reason of `code` for `status`; None when the status needs none and none is given.
        Raises `ReasonCodeRefused` for a missing code where one is needed, an unknown one, or one the
        status may not take."""
        if code is None:
            if needs_code(status):
                raise ReasonCodeRefused(None, status, self.allowed(status), False)
            return None
        if not self.allows(code, status):
            raise ReasonCodeRefused(code, status, self.allowed(status), code in self.by_code)
        return self.by_code[code]


def needs_code(status: InvoiceStatus) -> bool:
    """A refusal or a suspension: its reason needs a code from the list (the statuses needing a reason)."""
    return status.needs_reason


def load(path: Path = DATA) -> Reasons:
    version = ""
    reasons: dict[str, Reason] = {}
    header = True
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        cells = line.split(";")
        if cells[0] == "version":
            version = cells[1]
            continue
        if header:  # the column names
            header = False
            continue
        code, fr, en, statuses = cells
        reasons[code] = Reason(code, fr, en, frozenset(InvoiceStatus[s] for s in statuses.split()))
    if not version or not reasons:
        raise ValueError(f"{path}: no version or no reason")
    return Reasons(version, reasons)


REASONS = load()
