"""A billing file recorded straight into a store, for the views of billing frameworks (return flows, CLI, web).

Intake and progression are other modules' (flows/pipeline/circuits.py); the views only read what they
record. So the pieces are saved as intake saves them (`Store.save_invoices`, with their framework, billing
file, previous piece, holder and due time) and their statuses moved as progression moves them
(`Store.set_invoice_status`, checked against the lifecycle, with the actor and a reason code):

- op-sub (a sub-contractor) deposits A10, a draft monthly statement: A_VALIDER_1, validated by the
  titulaire (VALIDEE_1), passed on to the MOE (MISE_A_DISPOSITION_MOE), taken in (PRISE_EN_COMPTE_MOE);
- op-moe (the project manager) deposits A15, its état d'acompte, following it: MISE_A_DISPOSITION_MOA,
  refused by the MOA (REFUSEE_MOA, reason MARCHE);
- op-sub's A9 invoice, refused by its validator (REFUSEE_1, reason NON_AGREE): a file of its own;
- op-sub's plain A1 invoice: DEPOSEE, a one-piece file.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flows.domain.frameworks import Framework
from flows.domain.history import Source
from flows.domain.lifecycle import INVOICE, Actor, InvoiceStatus
from flows.domain.model import Channel, Flow, Invoice, invoice_id
from flows.store import Store

I = InvoiceStatus  # noqa: E741
SUPPLIER = "73282932000074"  # the sub-contractor
TITULAIRE = "44229377500031"  # its validator
MOE = "35600000000048"
MOA = "11000201100044"  # the buyer
DUE = dt.datetime(2026, 12, 20, 12, 0, tzinfo=dt.UTC)


@dataclasses.dataclass(frozen=True)
class Seeded:
    draft: Invoice  # A10, the file's first piece: the file's id is its id
    statement: Invoice  # A15, following it
    refused: Invoice  # A9, refused by its validator
    plain: Invoice  # A1
    flows: dict[str, Flow]  # by partner: op-sub's first flow, op-moe's


def _flow(store: Store, partner: str, name: str) -> Flow:
    return store.create_flow(
        Flow(id="", partner=partner, channel=Channel.FOLDER, original_name=name, size=10, sha256="ab" * 32)
    )


def _piece(flow: Flow, position: int, framework: Framework, status: InvoiceStatus, **facts: object) -> Invoice:
    inv = Invoice(
        id=invoice_id(flow.id, position),
        flow_id=flow.id,
        position=position,
        entry_name=f"piece_{position}.xml",
        status=status,
        framework=framework,
        number=f"{framework}-{position:04d}",
        type_code="380",
        supplier_id=SUPPLIER,
        supplier_id_type="1",
        buyer_siret=MOA,
        issue_date=dt.date(2026, 12, 1),
    )
    for k, v in facts.items():
        setattr(inv, k, v)
    if inv.billing_file_id is None:
        inv.billing_file_id = inv.id
    return inv


def move(
    store: Store,
    inv: Invoice,
    target: InvoiceStatus,
    actor: Actor,
    *,
    reason: str | None = None,
    code: str | None = None,
    turn: tuple[str | None, dt.datetime | None] | None = None,
) -> None:
    def check(current: InvoiceStatus, _holder: str | None) -> None:
        INVOICE.check(current, target, actor)

    source = Source.PLATFORM if actor is Actor.PLATFORM else Source.API
    entry = store.set_invoice_status(
        inv.id, target, actor=actor, source=source, reason=reason, check=check, reason_code=code, turn=turn
    )
    assert entry is not None


def seed(store: Store) -> Seeded:
    sub = _flow(store, "op-sub", "lot-sous-traitant.zip")
    draft = _piece(
        sub, 1, Framework.A10, I.A_VALIDER_1, validator_1=TITULAIRE, moe_siret=MOE, holder=TITULAIRE, due_at=DUE
    )
    refused = _piece(sub, 2, Framework.A9, I.A_VALIDER_1, validator_1=TITULAIRE, holder=TITULAIRE, due_at=DUE)
    plain = _piece(sub, 3, Framework.A1, I.DEPOSEE)
    store.save_invoices([draft, refused, plain], [])
    move(store, draft, I.VALIDEE_1, Actor.VALIDATOR)
    move(store, draft, I.MISE_A_DISPOSITION_MOE, Actor.PLATFORM, turn=(MOE, DUE + dt.timedelta(days=7)))
    move(store, draft, I.PRISE_EN_COMPTE_MOE, Actor.MOE)
    move(store, refused, I.REFUSEE_1, Actor.VALIDATOR, reason="Pas d'agrément au paiement direct", code="NON_AGREE")

    moe = _flow(store, "op-moe", "etat-acompte.xml")
    statement = _piece(
        moe, 1, Framework.A15, I.MISE_A_DISPOSITION_MOA,
        previous_id=draft.id, previous_number=draft.number, billing_file_id=draft.id, moa_siret=MOA, holder=MOA,
    )  # fmt: skip
    store.save_invoices([statement], [])
    move(store, statement, I.REFUSEE_MOA, Actor.MOA, reason="Le marché cité n'est pas le bon", code="MARCHE")
    stored = store.invoices_by_id([draft.id, statement.id, refused.id, plain.id])
    return Seeded(
        stored[draft.id], stored[statement.id], stored[refused.id], stored[plain.id], {"op-sub": sub, "op-moe": moe}
    )
