"""The one input of every rule: what is known about one invoice at the stage it is judged.

Every rule module has the same shape, ``check(ctx: InvoiceContext)``, whatever
it reads: a rule reads the fields it needs and reports nothing when they are
not known at this stage (None). Who fills what:

- a validation worker (`validators.document`, stage DOCUMENT): `facts`, `syntax`,
  `tree`, `attachments` and `total_size` (computed once, by `of_document`),
  `limits` and `prior`;
- the pipeline (`flows.pipeline.process`, stages STORE and DIRECTORY): `facts`, the flow's
  `seen`, the `store`, the `pieces` (associations), `flow_id`, the `directory` and the invoice's
  `addressing`.

>>> from flows.io.extract import Facts
>>> ctx = InvoiceContext(facts=Facts(buyer_siret="11000201100044"))
>>> ctx.attachments, ctx.directory, ctx.recipient, ctx.framework, ctx.association.previous
((), None, None, <Framework.A1: 'A1'>, None)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from lxml import etree

from flows.domain.frameworks import Framework
from flows.domain.model import Syntax, ValidationError
from flows.io.attachments import Attachment, attachments, pdf_attachments, total_size
from flows.io.extract import Facts
from validators.addressing import Addressing
from validators.association import NONE, Association, PieceLookup, associate, framework_of
from validators.limits import Limits
from validators.seen import InvoiceLookup, Seen

if TYPE_CHECKING:
    from flows.domain.reform_directory import DirectoryLine, Match
    from flows.domain.structures import Directory, Structure


class ReformLookup(Protocol):
    """The reform's directory as the routing rules read it (`flows.store.Store` is one)."""

    def reform_lines(self, identifiers: Sequence[str]) -> list[DirectoryLine]: ...

    def reform_siren_known(self, siren: str) -> bool: ...


__all__ = ["Addressing", "Association", "InvoiceContext", "InvoiceLookup", "PieceLookup", "Seen"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class InvoiceContext:
    """What the rules may read about one invoice; a field not known at the stage is None (or empty)."""

    facts: Facts | None = None  # `flows.io.extract.extract(syntax, tree)`
    syntax: Syntax | None = None
    tree: etree._ElementTree | etree._Element | None = None  # the invoice XML (a Factur-X's embedded one)
    #: Every attachment: the XML's, then a Factur-X PDF's other embedded files (`of_document`).
    attachments: tuple[Attachment, ...] = ()
    #: Bytes of the invoice and its attachments (`flows.io.attachments.total_size`), None when unknown.
    total_size: int | None = None
    limits: Limits = Limits()
    #: Codes of the fatal findings made before these rules (XSD, EN 16931): a platform rule
    #: whose EN 16931 counterpart (its module's ``SAME_AS``) is among them is not reported twice.
    prior: frozenset[str] = frozenset()
    seen: Seen | None = None  # the flow's invoices accepted so far (None: no in-flow duplicate check)
    store: InvoiceLookup | None = None  # earlier flows (None: no cross-flow duplicate check)
    pieces: PieceLookup | None = None  # recorded pieces an association may name (None: no association check)
    flow_id: str | None = None  # the flow being judged: its own stored invoices are left to `seen`
    directory: Directory | None = None  # the recipient directory (routing)
    addressing: Addressing | None = None  # where the invoice says it goes
    reform: ReformLookup | None = None  # the reform's directory (B2B routing, docs/reform.md §4)
    today: dt.date | None = None  # the day a line's status is judged on (None: today, UTC)

    @classmethod
    def of_document(
        cls,
        facts: Facts,
        syntax: Syntax,
        tree: etree._ElementTree | etree._Element,
        *,
        limits: Limits = Limits(),
        xml_size: int | None = None,
        pdf: bytes | None = None,
        xml_name: str | None = None,
        prior: tuple[ValidationError, ...] | list[ValidationError] = (),
    ) -> InvoiceContext:
        """The DOCUMENT-stage context of one parsed invoice; its attachments and size are computed here, once.

        `xml_size`: bytes of the invoice XML (without it, the size counts the attachments
        only); `pdf`: the whole PDF of a Factur-X and `xml_name` the name of its embedded
        invoice XML (`flows.io.detect.Detected.embedded_name`): its other embedded files are
        attachments; `prior`: the findings so far.
        """
        found = attachments(syntax, tree)
        everything = (*found, *(pdf_attachments(pdf, xml_name) if pdf is not None else ()))
        if xml_size is None:
            xml_size = sum(a.encoded for a in found)  # unknown: count the attachments only
        size = total_size(xml_size, list(everything), len(pdf) if pdf is not None else None)
        return cls(
            facts=facts,
            syntax=syntax,
            tree=tree,
            attachments=everything,
            total_size=size,
            limits=limits,
            prior=frozenset(e.rule for e in prior if e.fatal),
        )

    def one_attachment(self, a: Attachment) -> InvoiceContext:
        """This context narrowed to attachment `a` (the runner runs per-attachment rules one by one)."""
        return dataclasses.replace(self, attachments=(a,))

    @functools.cached_property
    def framework(self) -> Framework | None:
        """The billing framework BT-23 names (A1 without one); None when it names none (RLS-P12)."""
        return framework_of(self.facts)

    @functools.cached_property
    def association(self) -> Association:
        """The piece this one follows, or why none may be (`validators.association`), looked up once;
        nothing without `facts` or `pieces`."""
        if self.facts is None or self.pieces is None:
            return NONE
        return associate(self.framework, self.facts, self.pieces)

    @functools.cached_property
    def recipient(self) -> Structure | None:
        """The directory's structure for the buyer SIRET, looked up once; None without either."""
        if self.directory is None or self.addressing is None or not self.addressing.buyer_siret:
            return None
        return self.directory.get(self.addressing.buyer_siret)

    @functools.cached_property
    def reform_match(self) -> Match | None:
        """How the reform's directory routes the buyer (`flows.domain.reform_directory.choose`), looked up once;
        None without that directory, without a buyer, or when the buyer is a public structure (B2G first)."""
        from flows.domain.reform_directory import candidates, choose

        if self.reform is None or self.addressing is None or self.recipient is not None:
            return None
        buyer = self.addressing.buyer
        wanted = candidates(buyer)
        if not wanted or buyer.siren is None:
            return None
        found = self.reform.reform_lines(wanted)
        known = bool(found) or self.reform.reform_siren_known(buyer.siren)
        return choose(buyer, found, self.today or dt.datetime.now(dt.UTC).date(), known)

    @property
    def reform_known(self) -> bool:
        """Whether the buyer's SIREN is in the reform's directory (then the B2G identification rules step aside)."""
        m = self.reform_match
        return m is not None and m.siren_known
