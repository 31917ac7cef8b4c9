"""Validate one invoice file outside the pipeline (``relais validate``).

The same judge as the pipeline's workers (read, XSD, EN 16931 / Factur-X
business rules, the platform rules of stage DOCUMENT), minus the stages that need
the store (STORE: duplicates) and the directory (DIRECTORY: routing).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flows.domain import technical
from flows.domain.errors import Rejected
from flows.domain.model import Container, Syntax, ValidationError
from flows.io.safearchive import sniff
from validators.document import DocumentJudge


@dataclasses.dataclass
class DocumentReport:
    path: str
    syntax: Syntax | None = None
    profile: str | None = None
    errors: list[ValidationError] = dataclasses.field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(e.fatal for e in self.errors)

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "syntax": str(self.syntax) if self.syntax else None,
            "profile": self.profile,
            "valid": self.valid,
            "errors": [e.as_json() for e in self.errors],
        }


def validate_bytes(
    path: str, data: bytes, judge: DocumentJudge, *, keep_going: bool = False, br_fr: bool = False
) -> DocumentReport:
    """Report on one file. Internal failures (a stylesheet that cannot run) are raised, never 'valid'."""
    report = DocumentReport(path)
    container = sniff(data[:4096]) if data else Container.UNKNOWN
    if not data or container not in (Container.XML, Container.PDF):
        rule = technical.EMPTY_FILE if not data else technical.UNKNOWN_FORMAT
        detail = None if not data else f"detected {container}; validate takes one XML or PDF invoice"
        report.errors.append(Rejected(rule, detail).to_error())
        return report
    verdict = judge.judge(data, container, keep_going=keep_going, br_fr=br_fr)
    report.syntax, report.profile, report.errors = verdict.syntax, verdict.profile, verdict.errors
    return report
