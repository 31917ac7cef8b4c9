"""Typed exceptions. Input refusals carry the rule that refused them."""

from __future__ import annotations

from flows.domain.model import ValidationError
from flows.domain.rule import Rule


class RelaisError(Exception):
    """Base of every error Relais raises on purpose."""


class Rejected(RelaisError):
    """The input breaks a rule: a verdict on the sender's data, reported back to it."""

    def __init__(self, rule: Rule, detail: str | None = None, location: str = "/") -> None:
        self.rule = rule
        self.detail = detail
        self.location = location
        super().__init__(f"{rule.code}: {rule.message_en}" + (f": {detail}" if detail else ""))

    def to_error(self) -> ValidationError:
        return self.rule.error(self.location, self.detail)


class UnsafeInput(Rejected):
    """Hostile or oversized input refused before it could do harm."""


class Incident(RelaisError):
    """Relais itself failed: never a verdict on the input (fail closed)."""


class ConfigError(RelaisError):
    """A configuration or directory file is unusable."""
