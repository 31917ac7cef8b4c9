"""Validate one invoice file outside the pipeline (``relais validate``).

Same readers and rules as the pipeline, minus routing (no directory needed).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flows import detect, safearchive, safexml
from flows.errors import Rejected
from flows.model import Container, Syntax, ValidationError
from flows.pipeline import facturx_profile
from validators import technical
from validators.xsd import XsdValidator


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
            "valid": self.valid,
            "errors": [e.as_json() for e in self.errors],
        }


def validate_bytes(path: str, data: bytes, xsd: XsdValidator, limits: safexml.XmlLimits | None = None) -> DocumentReport:
    report = DocumentReport(path)
    limits = limits or safexml.XmlLimits()
    try:
        if not data:
            raise Rejected(technical.EMPTY_FILE)
        container = safearchive.sniff(data[:4096])
        if container not in (Container.XML, Container.PDF):
            raise Rejected(technical.UNKNOWN_FORMAT, f"detected {container}; validate takes one XML or PDF invoice")
        detected = detect.detect(container, data, limits)
        report.syntax = detected.syntax
        tree = safexml.parse(detected.xml, limits=limits)
        if detected.syntax is Syntax.FACTURX:
            report.profile = facturx_profile(tree)
        report.errors.extend(xsd.validate(detected.syntax, tree, report.profile))
    except Rejected as r:
        report.errors.append(r.to_error())
    return report
