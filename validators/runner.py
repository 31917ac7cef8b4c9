"""The one runner of the rule modules: the rules of the requested stages, in one declared order.

Every rule module (`validators/platform/`, `validators/routing/`) has the shape
``RULE`` (a `flows.domain.rule.Rule`, which declares its category and stage) and
``check(ctx: InvoiceContext)``. `run` takes the rules of the stages asked for,
in the order of `ORDER`, and returns their findings in that order:

- a validation worker (`validators.document`) runs stage DOCUMENT;
- the pipeline (`flows.pipeline.process`) runs stage STORE, then DIRECTORY: the duplicate
  rule needs the store and runs there only, once per invoice.

Two module constants shape the run:

- ``FINAL = True``: a breach ends the stage, the rules after it are not run (the
  routing identification rules: no service to check on an unknown structure);
- the rules of an `EachAttachment` step run attachment by attachment (all of them on
  the first attachment, then on the second ...), so that findings read in document
  order; their ``check`` returns a list.

All other rules report (none stops the others). An internal failure (the store
cannot be queried) raises: the caller treats it as an incident, never as a verdict.

>>> from flows.io.extract import Facts
>>> [e.rule for e in run(InvoiceContext(facts=Facts(type_code="380")), [Stage.DOCUMENT])]
['RLS-P09']
>>> from validators.addressing import Addressing
>>> [e.rule for e in run(InvoiceContext(addressing=Addressing(None)), [Stage.DIRECTORY])]  # FINAL: stops
['RLS-R01']
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Protocol

from flows.domain.model import ValidationError
from flows.domain.rule import Rule, Stage
from validators.context import InvoiceContext
from validators.platform import (
    amount_due_exceeds_total,
    attachment_extension,
    attachment_name,
    attachment_size,
    attachment_unreadable,
    currency_mismatch,
    currency_missing,
    duplicate_invoice,
    invoice_size,
    negative_invoice,
    totals_mismatch,
)
from validators.platform.circuits import (
    framework_not_accepted,
    framework_unknown,
    moe_missing,
    previous_cannot_precede,
    previous_followed,
    previous_missing,
    previous_other_parties,
    previous_unknown,
    validator_missing,
)
from validators.routing import (
    buyer_siret_missing,
    ej_missing,
    ej_or_service_missing,
    recipient_inactive,
    reform_line_disabled,
    reform_no_line,
    service_code_missing,
    service_inactive,
    service_unknown,
    siret_checksum,
    siret_unknown,
)

__all__ = ["ORDER", "EachAttachment", "RuleModule", "Stage", "rules", "run"]

Findings = ValidationError | list[ValidationError] | None


class RuleModule(Protocol):
    """The shape of a rule module."""

    RULE: Rule

    def check(self, ctx: InvoiceContext) -> Findings: ...


@dataclasses.dataclass(frozen=True)
class EachAttachment:
    """Rules run attachment by attachment, each over the context narrowed to one attachment."""

    rules: tuple[RuleModule, ...]


ORDER: tuple[RuleModule | EachAttachment, ...] = (
    duplicate_invoice,  # STORE
    previous_missing,  # the association (BT-25): one of them at most reports (validators.association)
    previous_unknown,
    previous_other_parties,
    previous_cannot_precede,
    previous_followed,
    EachAttachment((attachment_unreadable, attachment_name, attachment_extension, attachment_size)),
    invoice_size,
    totals_mismatch,
    amount_due_exceeds_total,
    negative_invoice,
    currency_missing,
    currency_mismatch,
    framework_unknown,  # the billing framework (BT-23) and its actors (BG-24)
    validator_missing,
    moe_missing,
    buyer_siret_missing,  # DIRECTORY: identification, each FINAL
    siret_checksum,
    siret_unknown,
    reform_no_line,  # the reform's directory (B2B, docs/reform.md §4): no line, a disabled one; FINAL
    reform_line_disabled,
    recipient_inactive,
    service_code_missing,  # the recipient's requirements: all report
    service_unknown,
    service_inactive,
    ej_missing,
    ej_or_service_missing,
    framework_not_accepted,
)


def rules(stages: Iterable[Stage] | None = None) -> list[RuleModule]:
    """The rule modules of `stages` (all when None), in run order.

    >>> [m.RULE.code for m in rules([Stage.STORE])]
    ['RLS-P01', 'RLS-P16', 'RLS-P17', 'RLS-P18', 'RLS-P19', 'RLS-P20']
    """
    wanted = set(Stage) if stages is None else set(stages)
    flat = [m for step in ORDER for m in (step.rules if isinstance(step, EachAttachment) else (step,))]
    return [m for m in flat if m.RULE.stage in wanted]


def run(ctx: InvoiceContext, stages: Iterable[Stage]) -> list[ValidationError]:
    """Findings of the rules of `stages` over `ctx`, in `ORDER`."""
    wanted = set(stages)
    stopped: set[Stage] = set()
    errors: list[ValidationError] = []
    for step in ORDER:
        if isinstance(step, EachAttachment):
            each = [m for m in step.rules if m.RULE.stage in wanted - stopped]
            for a in ctx.attachments if each else ():
                one = ctx.one_attachment(a)
                for m in each:
                    errors.extend(_as_list(m.check(one)))
            continue
        if step.RULE.stage not in wanted - stopped:
            continue
        found = _as_list(step.check(ctx))
        errors.extend(found)
        if found and getattr(step, "FINAL", False):
            stopped.add(step.RULE.stage)
    return errors


def _as_list(found: Findings) -> list[ValidationError]:
    if found is None:
        return []
    return found if isinstance(found, list) else [found]
