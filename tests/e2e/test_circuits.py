"""The billing circuits end to end (docs/billing-frameworks.md): real `relais run --watch` and `relais api serve`
processes on one RELAIS_HOME (tests/e2e/conftest.py: SQLite, and PostgreSQL in a private schema), pieces of
the generator's circuit sets (`relais.generate.circuits`) dropped in the partners' drop zones, the actors'
tokens made by `relais api token create`, their moves made through the API (httpx).

1. works during the contract: A4 -> the MOE -> A15 -> the MOA -> A19 -> the finance service;
2. a sub-contractor's A9 validated by its titulaire, delivered once; a co-contractor's A12 refused by its
   mandataire, the reason code in the depositor's status return flow;
3. refusals: by the MOE (MONTANT refused, AUTRE taken), by the MOA, by the recipient; a refused follower
   frees the piece it followed;
4. deadlines: the days pass (a piece's `due_at` set in the past in the store: see `Hub.due_now`) and the
   running `relais run` applies them; a piece not due is left alone;
5. association refused (RLS-P17..P20), named in XSD-valid integration reports.

tests/e2e/test_circuits_returns.py: kill -9 in the middle of a circuit step, then the status return flows
and the exactly-once checks over everything these tests did.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator

import httpx
import pytest
from lxml import etree

from flows.domain.frameworks import Framework
from flows.domain.lifecycle import InvoiceStatus as S
from flows.domain.model import Invoice
from flows.returns import report as returnflow
from relais import generate as gen
from relais.generate.circuits import circuit_set
from tests.support.circuit_hub import Hub

RECIPIENTS = gen.sample_directory()


def _set(kind: str, seed: int, n: int = 1):  # type: ignore[no-untyped-def]
    return circuit_set(kind, n, 1, RECIPIENTS, seed=seed, start=seed * 1000)  # type: ignore[arg-type]


#: Every scenario's billing files: numbers from seed * 1000, sellers and actors of their own.
WORKS = {
    name: _set("works", seed) for name, seed in (("during", 11), ("moe", 12), ("moa", 13), ("late", 14), ("assoc", 15))
}
SUBS = {name: _set("subcontract", seed) for name, seed in (("valid", 21), ("late", 22), ("not-due", 23))}
COS = {name: _set("cocontract", seed) for name, seed in (("refused", 31),)}
ALL = [*WORKS.values(), *SUBS.values(), *COS.values()]


@pytest.fixture
def ready(hub: Hub) -> Iterator[Hub]:
    """The hub with every scenario's actors registered (`relais actors import`, once)."""
    if not getattr(hub, "_circuit_actors", False):
        hub.actors(a for cs in ALL for a in cs.actors)
        hub._circuit_actors = True  # type: ignore[attr-defined]
    yield hub


def deposit(hub: Hub, partner: str, spec: gen.InvoiceSpec, fmt: str = "ubl") -> Invoice:
    """Drop one piece in `partner`'s drop zone; the piece once its flow is processed."""
    name, data = gen.document(fmt, spec)  # type: ignore[arg-type]
    [inv] = hub.deposit(partner, name, data)
    return inv


def actor(spec: gen.InvoiceSpec, role: str) -> str:
    return dict(spec.supporting)[role]


def ids(c: httpx.Client, **params: str) -> list[str]:
    r = c.get("/api/v1/invoices", params={"limit": "500", **params})
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["invoices"]]


def act(c: httpx.Client, inv: Invoice, status: str, **body: str) -> dict:
    r = c.post(f"/api/v1/invoices/{inv.id}/status", json={"status": status, **body})
    assert r.status_code == 200, (inv.id, status, r.status_code, r.text)
    return r.json()


def history(hub: Hub, inv: Invoice) -> list[str]:
    return [h.status.name for h in hub.store.invoice_history(inv.id)]


# ---- 1. works during the contract ----------------------------------------------------------------------


def test_works_walk_from_the_titulaire_to_the_finance_service(ready: Hub) -> None:
    hub = ready
    a4s, a15s, a19s = (d.specs[0] for d in WORKS["during"].deposits)
    moe, buyer = actor(a4s, "MOE"), a4s.buyer_siret
    name, data = gen.document("ubl", a4s)
    [a4] = hub.deposit("titulaire", name, data)
    assert (a4.framework, a4.status, a4.holder, a4.billing_file_id) == (
        Framework.A4,
        S.MISE_A_DISPOSITION_MOE,
        moe,
        a4.id,
    )
    with hub.client(moe) as c:
        assert a4.id in ids(c, status="MISE_A_DISPOSITION_MOE")
        got = c.get(f"/api/v1/invoices/{a4.id}/file")
        assert got.status_code == 200 and got.content == data
        act(c, a4, "PRISE_EN_COMPTE_MOE")
    a15 = deposit(hub, "moe", a15s)
    assert (a15.framework, a15.status, a15.holder) == (Framework.A15, S.MISE_A_DISPOSITION_MOA, buyer)
    assert (a15.previous_id, a15.billing_file_id) == (a4.id, a4.id)
    with hub.client(buyer) as c:
        assert a15.id in ids(c, status="MISE_A_DISPOSITION_MOA")
        act(c, a15, "TRANSMISE_MOA")
    a19 = deposit(hub, "moa", a19s)
    assert (a19.framework, a19.previous_id, a19.billing_file_id) == (Framework.A19, a15.id, a4.id)
    hub.reaches(a19.id, S.MISE_A_DISPOSITION)
    delivered = hub.delivered(a19.id)
    assert delivered.is_file() and (hub.home / "delivery") in delivered.parents
    assert [p for p in (hub.home / "delivery").rglob(f"{a19.id}*") if p.is_file()] == [delivered]
    with hub.client(buyer) as c:
        assert a19.id in ids(c, status="MISE_A_DISPOSITION")
        act(c, a19, "SERVICE_FAIT")
        act(c, a19, "MANDATEE")
        r = c.get(f"/api/v1/billing-files/{a4.id}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == a4.id
    assert [(p["id"], p["framework"], p["depositor"]) for p in body["pieces"]] == [
        (a4.id, "A4", "supplier"),
        (a15.id, "A15", "moe"),
        (a19.id, "A19", "moa"),
    ]
    assert [[(h["status"], h["actor"]) for h in p["history"]] for p in body["pieces"]] == [
        [("MISE_A_DISPOSITION_MOE", "platform"), ("PRISE_EN_COMPTE_MOE", "moe")],
        [("MISE_A_DISPOSITION_MOA", "platform"), ("TRANSMISE_MOA", "moa")],
        [("DEPOSEE", "platform"), ("MISE_A_DISPOSITION", "platform"), ("SERVICE_FAIT", "recipient"),
         ("MANDATEE", "recipient")],
    ]  # fmt: skip


# ---- 2. sub-contractor and co-contractor ---------------------------------------------------------------


def delivered_files(hub: Hub, inv: Invoice) -> list:
    return sorted(p for p in (hub.home / "delivery").rglob(f"{inv.id}*") if p.is_file())


def status_entries(hub: Hub, partner: str, inv: Invoice) -> list[etree._Element]:
    """The entries of `inv` in the status return flows sent to `partner` so far (each file XSD-valid)."""
    found = []
    for path in sorted(hub.outbox(partner).glob("ST*.xml")):
        returnflow.validate(path)
        found += [e for e in etree.parse(str(path)).iter("CPPFactureStatut") if e.findtext("IdFacture") == inv.id]
    return found


def test_a_subcontractor_piece_validated_by_its_titulaire_is_delivered_once(ready: Hub) -> None:
    hub = ready
    spec = SUBS["valid"].deposits[0].specs[0]
    titulaire = actor(spec, "VALIDEUR")
    a9 = deposit(hub, "sous-traitant", spec)
    assert (a9.framework, a9.status, a9.holder) == (Framework.A9, S.A_VALIDER_1, titulaire)
    assert a9.due_at is not None and delivered_files(hub, a9) == []
    with hub.client(spec.buyer_siret) as c:  # not the buyer's turn yet
        assert a9.id not in ids(c)
    with hub.client(titulaire) as c:
        assert a9.id in ids(c, status="A_VALIDER_1")
        body = act(c, a9, "VALIDEE_1")
        assert [(e["status"], e["actor"]) for e in body["then"]] == [("MISE_A_DISPOSITION", "platform")]
    path = hub.delivered(a9.id)
    assert delivered_files(hub, a9) == [path]
    deliveries = [r for r in hub.store.outbox_for_flow(a9.flow_id) if r.kind == "delivery" and r.invoice_id == a9.id]
    assert [r.status for r in deliveries] == ["sent"]
    with hub.client(spec.buyer_siret) as c:
        assert a9.id in ids(c, status="MISE_A_DISPOSITION")
    assert history(hub, a9) == ["A_VALIDER_1", "VALIDEE_1", "MISE_A_DISPOSITION"]


def test_a_cocontractor_piece_refused_by_its_mandataire_says_why_to_its_depositor(ready: Hub) -> None:
    hub = ready
    spec = COS["refused"].deposits[0].specs[0]
    mandataire = actor(spec, "VALIDEUR")
    a12 = deposit(hub, "cotraitant", spec)
    assert (a12.framework, a12.status, a12.holder) == (Framework.A12, S.A_VALIDER_1, mandataire)
    why = {"reason": "Part non prévue à la convention de groupement", "reason_code": "HORS_GROUPEMENT"}
    with hub.client(mandataire) as c:
        body = act(c, a12, "REFUSEE_1", **why)
        assert body["reason_code"] == "HORS_GROUPEMENT" and body["then"] == []
        assert a12.id not in ids(c)
        r = c.post(f"/api/v1/invoices/{a12.id}/status", json={"status": "VALIDEE_1"})
        assert r.status_code == 409 and (r.json()["current"], r.json()["allowed"]) == ("REFUSEE_1", []), r.text
    refused = hub.piece(a12.id)
    assert refused.status is S.REFUSEE_1 and refused.status.is_final and refused.holder is None
    assert history(hub, a12) == ["A_VALIDER_1", "REFUSEE_1"] and delivered_files(hub, a12) == []
    [entry] = hub_wait(lambda: status_entries(hub, "cotraitant", a12), "the refusal's status return flow")
    data = entry.find("DonneesStatut")
    assert data.findtext("IdStatut") == S.REFUSEE_1.code and data.findtext("LibelleStatut") == "REFUSEE_1"
    assert data.findtext("Motif") == why["reason"] and data.findtext("Acteur") == "VALIDATEUR"
    assert data.findtext("CodeMotif") == "HORS_GROUPEMENT"
    assert data.findtext("LibelleMotif") == "Cotraitant hors du groupement ou part non prévue"
    assert entry.findtext("CadreFacturation") == "A12"


def hub_wait(condition, what: str):  # type: ignore[no-untyped-def]
    from tests.support.circuit_hub import WAIT
    from tests.support.waiting import wait_until

    return wait_until(condition, WAIT, what, every=0.1)


# ---- 3. refusals -----------------------------------------------------------------------------------------


def test_the_moe_refuses_but_not_for_an_amount(ready: Hub) -> None:
    hub = ready
    a4s = WORKS["moe"].deposits[0].specs[0]
    a4 = deposit(hub, "titulaire", a4s)
    with hub.client(actor(a4s, "MOE")) as c:
        r = c.post(
            f"/api/v1/invoices/{a4.id}/status",
            json={"status": "REFUSEE_MOE", "reason": "montants faux", "reason_code": "MONTANT"},
        )
        assert r.status_code == 422, r.text
        assert r.json()["reason_code"] == "MONTANT" and "MONTANT" not in r.json()["allowed"]
        assert {"AUTRE", "DECOMPTE_INCOMPLET"} <= set(r.json()["allowed"])
        assert history(hub, a4) == ["MISE_A_DISPOSITION_MOE"]
        act(c, a4, "REFUSEE_MOE", reason="Situation hors marché", reason_code="AUTRE")
    refused = hub.piece(a4.id)
    assert refused.status is S.REFUSEE_MOE and refused.holder is None
    [h] = [h for h in hub.store.invoice_history(a4.id) if h.status is S.REFUSEE_MOE]
    assert (h.reason_code, h.reason, h.actor.value) == ("AUTRE", "Situation hors marché", "moe")
    # a refused piece cannot be followed (RLS-P19)
    a15 = deposit(hub, "moe", WORKS["moe"].deposits[1].specs[0])
    assert a15.status is S.REJETEE and "RLS-P19" in {e.rule for e in a15.errors}


def test_refused_followers_free_the_piece_they_followed(ready: Hub) -> None:
    """The MOA refuses an A15, the recipient rejects an A19: a new follower of the same piece is taken."""
    hub = ready
    a4s, a15s, a19s = (d.specs[0] for d in WORKS["moa"].deposits)
    buyer = a4s.buyer_siret
    a4 = deposit(hub, "titulaire", a4s)
    first = deposit(hub, "moe", a15s)
    assert first.status is S.MISE_A_DISPOSITION_MOA and (a4.id, first.id) in hub.links()
    with hub.client(buyer) as c:
        act(c, first, "PRISE_EN_COMPTE_MOA")
        act(c, first, "REFUSEE_MOA", reason="Le marché cité n'est pas le bon", reason_code="MARCHE")
    assert (a4.id, first.id) not in hub.links()
    again = deposit(hub, "moe", dataclasses.replace(a15s, number=a15s.number + "-B"))
    assert (again.status, again.previous_id, again.billing_file_id) == (S.MISE_A_DISPOSITION_MOA, a4.id, a4.id)
    assert (a4.id, again.id) in hub.links()
    with hub.client(buyer) as c:
        act(c, again, "TRANSMISE_MOA")
    a19s = dataclasses.replace(a19s, previous=again.number)
    rejected = deposit(hub, "moa", a19s)
    hub.delivered(rejected.id)
    with hub.client(buyer) as c:
        act(c, rejected, "REJETEE", reason="Montant TTC différent du décompte", reason_code="MONTANT")
    assert hub.piece(rejected.id).status is S.REJETEE and (again.id, rejected.id) not in hub.links()
    a19 = deposit(hub, "moa", dataclasses.replace(a19s, number=a19s.number + "-B"))
    assert (a19.previous_id, a19.billing_file_id) == (again.id, a4.id)
    hub.reaches(a19.id, S.MISE_A_DISPOSITION)
    with hub.client(buyer) as c:
        file = c.get(f"/api/v1/billing-files/{a19.id}").json()
    assert [(p["id"], p["status"]["label"]) for p in file["pieces"]] == [
        (a4.id, "MISE_A_DISPOSITION_MOE"),
        (first.id, "REFUSEE_MOA"),
        (again.id, "TRANSMISE_MOA"),
        (rejected.id, "REJETEE"),
        (a19.id, "MISE_A_DISPOSITION"),
    ]
    [moa_refusal] = [h for h in file["pieces"][1]["history"] if h["status"] == "REFUSEE_MOA"]
    assert (moa_refusal["reason_code"], moa_refusal["actor"]) == ("MARCHE", "moa")
    [rejection] = [h for h in file["pieces"][3]["history"] if h["status"] == "REJETEE"]
    assert (rejection["reason_code"], rejection["reason_label"]) == ("MONTANT", "Erreur de montant")


# ---- 4. deadlines ----------------------------------------------------------------------------------------


def test_deadlines_pass_tacitly_and_only_when_due(ready: Hub) -> None:
    """The days pass: the pieces' deadlines are set in the past in the store (what 15 or 7 days would do),
    and the running `relais run` applies them at its next pass; a piece due in an hour stays where it is."""
    hub = ready
    a9s, other = SUBS["late"].deposits[0].specs[0], SUBS["not-due"].deposits[0].specs[0]
    a4s = WORKS["late"].deposits[0].specs[0]
    a9, a4, waiting = (
        deposit(hub, "sous-traitant", a9s),
        deposit(hub, "titulaire", a4s),
        deposit(hub, "sous-traitant", other),
    )
    for inv, days in ((a9, 15), (a4, 7), (waiting, 15)):  # the deadlines of the settings, from intake
        taken = hub.store.invoice_history(inv.id)[0].at
        assert inv.due_at is not None and inv.due_at - taken == dt.timedelta(days=days), (inv.due_at, taken)
    in_an_hour = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    hub.due_now([waiting.id], at=in_an_hour)
    hub.due_now([a9.id, a4.id])
    hub.reaches(a9.id, S.MISE_A_DISPOSITION)
    hub.reaches(a4.id, S.MISE_A_DISPOSITION_MOA)
    assert history(hub, a9) == ["A_VALIDER_1", "ABSENCE_VALIDATION_1_HORS_DELAI", "MISE_A_DISPOSITION"]
    assert history(hub, a4) == [
        "MISE_A_DISPOSITION_MOE",
        "ABSENCE_VALIDATION_MOE_DELAI_REGLEMENTAIRE",
        "MISE_A_DISPOSITION_MOA",
    ]
    late = hub.store.invoice_history(a9.id)[1]
    assert (late.actor.value, late.reason) == (
        "platform",
        "Délai de validation de 15 jours dépassé : validation tacite",
    )
    path = hub.delivered(a9.id)  # waits for the delivery first (an assert's left side would be read before it)
    assert delivered_files(hub, hub.piece(a9.id)) == [path]
    moved = hub.piece(a4.id)
    assert moved.holder == a4s.buyer_siret
    with hub.client(a4s.buyer_siret) as c:
        assert a4.id in ids(c, status="MISE_A_DISPOSITION_MOA")
    # another pass (a flow processed after the one that moved them), and the piece not due is still waiting
    deposit(
        hub, "sous-traitant", dataclasses.replace(other, number=other.number + "-MARK", framework=None, supporting=())
    )
    still = hub.piece(waiting.id)
    assert (still.status, still.holder, history(hub, still)) == (
        S.A_VALIDER_1,
        actor(other, "VALIDEUR"),
        ["A_VALIDER_1"],
    )


# ---- 5. association refused ------------------------------------------------------------------------------


def test_association_refusals_are_named_in_the_integration_reports(ready: Hub) -> None:
    hub = ready
    a4s, a15s, a19s = (d.specs[0] for d in WORKS["assoc"].deposits)
    a4 = deposit(hub, "titulaire", a4s)
    a15 = deposit(hub, "moe", a15s)
    assert a15.status is S.MISE_A_DISPOSITION_MOA
    stranger = gen.sample_suppliers(8, seed=5)[-1][0]
    bad = {
        "RLS-P17": dataclasses.replace(a15s, number=a15s.number + "-X", previous="A4-999999"),
        "RLS-P18": dataclasses.replace(a15s, number=a15s.number + "-Y", supplier_siret=stranger),
        "RLS-P19": dataclasses.replace(a19s, previous=a4s.number),
        "RLS-P20": dataclasses.replace(a15s, number=a15s.number + "-Z"),
    }
    for rule, spec in bad.items():
        name, data = gen.document("ubl", spec)
        partner = "moa" if spec.framework == "A19" else "moe"
        hub.drop(partner, name, data)
        flow = hub.processed(partner, name, data)
        [inv] = hub.store.iter_invoices(flow.id)
        assert inv.status is S.REJETEE and rule in {e.rule for e in inv.errors if e.fatal}, (rule, inv.errors)
        report = hub.report(flow)
        returnflow.validate(report)
        codes = etree.parse(str(report)).xpath("//LigneErreurDetail/CodeErreur/text()")
        assert rule in codes, (rule, codes)
    assert hub.links() >= {(a4.id, a15.id)}
    assert not {i for p, i in hub.links() if p == a4.id} - {a15.id}
