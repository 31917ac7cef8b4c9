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

`seed_waiting` records, for the landing page's "Circuits de facturation" and its metrics, pieces waiting in
every kind of step around a given time (`Waiting` lists them and what each figure must be).
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


@dataclasses.dataclass(frozen=True)
class Waiting:
    """`seed_waiting`'s pieces, by name; `expected` the figures of each waiting status at its `now`:
    {status: (waiting, overdue, due soon, oldest piece's id, its billing file's id)}, the statuses without any
    piece left out."""

    pieces: dict[str, Invoice]
    flows: dict[str, Flow]  # "sub-1", "moe", "sub-2", in the order received
    expected: dict[InvoiceStatus, tuple[int, int, int, str, str]]


def seed_waiting(store: Store, now: dt.datetime) -> Waiting:
    """Pieces waiting at `now` (saved as intake saves them: status, holder, due time set), of two partners:

    - op-sub's first flow: three A_VALIDER_1 pieces, 2 days late, due in 24 h and in 10 days; one
      ERREUR_FOURNISSEUR_SUR_VALIDEUR (no deadline: it waits for ops); an A_VALIDER_2 due in 47 h; a plain
      DEPOSEE invoice (not in a circuit);
    - op-moe's flow: an A4 MISE_A_DISPOSITION_MOE due exactly at `now` (late: the deadline step moves a piece
      due at `now`), an A4 PRISE_EN_COMPTE_MOE due exactly in 48 h (soon), an A15 MISE_A_DISPOSITION_MOA
      following the first A4 (its billing file), an A15 refused by its MOA (final: waits for nobody), an
      A20 A_ASSOCIER_FOURNISSEUR;
    - op-sub's second flow: an A_VALIDER_1 piece due in 49 h (neither late nor soon).
    """
    hours = dt.timedelta(hours=1)
    sub1 = _flow(store, "op-sub", "attente-1.zip")
    p: dict[str, Invoice] = {}
    val = {"validator_1": TITULAIRE, "holder": TITULAIRE}
    p["late"] = _piece(sub1, 1, Framework.A9, I.A_VALIDER_1, due_at=now - 48 * hours, **val)
    p["soon"] = _piece(sub1, 2, Framework.A9, I.A_VALIDER_1, due_at=now + 24 * hours, **val)
    p["later"] = _piece(sub1, 3, Framework.A10, I.A_VALIDER_1, due_at=now + 240 * hours, moe_siret=MOE, **val)
    p["wrong"] = _piece(sub1, 4, Framework.A9, I.ERREUR_FOURNISSEUR_SUR_VALIDEUR, **val)
    p["second"] = _piece(
        sub1, 5, Framework.A9, I.A_VALIDER_2, validator_1=TITULAIRE, validator_2=MOE, holder=MOE,
        due_at=now + 47 * hours,
    )  # fmt: skip
    p["plain"] = _piece(sub1, 6, Framework.A1, I.DEPOSEE, holder=MOA)
    store.save_invoices([p[k] for k in ("late", "soon", "later", "wrong", "second", "plain")], [])

    moe = _flow(store, "op-moe", "attente-moe.zip")
    works = {"supplier_id": MOE, "moe_siret": MOE}
    p["moe"] = _piece(moe, 1, Framework.A4, I.MISE_A_DISPOSITION_MOE, holder=MOE, due_at=now, **works)
    p["moe-taken"] = _piece(moe, 2, Framework.A4, I.PRISE_EN_COMPTE_MOE, holder=MOE, due_at=now + 48 * hours, **works)
    p["moa"] = _piece(
        moe, 3, Framework.A15, I.MISE_A_DISPOSITION_MOA, holder=MOA, moa_siret=MOA,
        previous_id=p["moe"].id, previous_number=p["moe"].number, billing_file_id=p["moe"].id,
    )  # fmt: skip
    p["moa-refused"] = _piece(moe, 4, Framework.A15, I.REFUSEE_MOA, moa_siret=MOA)
    p["supplier"] = _piece(moe, 5, Framework.A20, I.A_ASSOCIER_FOURNISSEUR, holder=SUPPLIER)
    store.save_invoices([p[k] for k in ("moe", "moe-taken", "moa", "moa-refused", "supplier")], [])

    sub2 = _flow(store, "op-sub", "attente-2.zip")
    p["newer"] = _piece(sub2, 1, Framework.A9, I.A_VALIDER_1, due_at=now + 49 * hours, **val)
    store.save_invoices([p["newer"]], [])

    def oldest(name: str) -> tuple[str, str]:
        return p[name].id, p[name].billing_file_id or p[name].id

    expected = {
        I.A_VALIDER_1: (4, 1, 1, *oldest("late")),
        I.ERREUR_FOURNISSEUR_SUR_VALIDEUR: (1, 0, 0, *oldest("wrong")),
        I.A_VALIDER_2: (1, 0, 1, *oldest("second")),
        I.MISE_A_DISPOSITION_MOE: (1, 1, 0, *oldest("moe")),
        I.PRISE_EN_COMPTE_MOE: (1, 0, 1, *oldest("moe-taken")),
        I.MISE_A_DISPOSITION_MOA: (1, 0, 0, p["moa"].id, p["moe"].id),
        I.A_ASSOCIER_FOURNISSEUR: (1, 0, 0, *oldest("supplier")),
    }
    return Waiting(p, {"sub-1": sub1, "moe": moe, "sub-2": sub2}, expected)
