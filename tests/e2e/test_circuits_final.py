"""The end of a works contract and the tacit procedure end to end (docs/billing-frameworks.md §2, §4), on the
running hub of tests/e2e/conftest.py (real `relais run --watch` and `relais api serve`, SQLite and PostgreSQL),
after tests/e2e/test_circuits.py and before tests/e2e/test_circuits_returns.py, whose checks over everything
(one flow per file, links, deliveries, status return flows once and in order) judge these pieces too. The
pieces are the generator's (`relais generate --circuit final|tacit`), each scenario with its own numbers,
sellers and partners:

8. the end of the contract: the titulaire's draft final statement A7 -> the MOE takes it in -> the MOE's
   general statement A18 -> the MOA transmits it -> the MOA's general statement A20, the titulaire's turn to
   sign -> its signed DGD A8 -> the finance service;
9. the tacit procedure: the titulaire's A7 at the MOE, replaced by its draft general statement A22
   (REMPLACEE_PAR_A22, the titulaire hears it), the A22 at the MOA, then its tacit DGD A23 to the finance
   service; and an A22 replacing the MOE's A18 at the MOA (the MOE hears it), then the MOA's A25.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest
from lxml import etree

from flows.domain.frameworks import Framework
from flows.domain.lifecycle import InvoiceStatus as S
from flows.domain.model import Invoice
from flows.returns import report as returnflow
from flows.store.circuits import REPLACED_REASON
from relais import generate as gen
from relais.generate.circuits import circuit_set
from tests.support.circuit_hub import WAIT, Hub
from tests.support.waiting import wait_until

RECIPIENTS = gen.sample_directory()
FINAL = circuit_set("final", 1, 1, RECIPIENTS, seed=51, start=51_000)
TACIT = circuit_set("tacit", 1, 1, RECIPIENTS, seed=52, start=52_000)
#: The A18 replaced at the MOA: an end-of-contract file whose titulaire turns to the tacit procedure.
REPLACED_AT_MOA = circuit_set("final", 1, 1, RECIPIENTS, seed=53, start=53_000)


@pytest.fixture
def ready(hub: Hub) -> Iterator[Hub]:
    """The hub with these scenarios' actors registered too (`relais actors import`, once)."""
    if not getattr(hub, "_final_actors", False):
        hub.actors(a for cs in (FINAL, TACIT, REPLACED_AT_MOA) for a in cs.actors)
        hub._final_actors = True  # type: ignore[attr-defined]
    yield hub


def deposit(hub: Hub, partner: str, spec: gen.InvoiceSpec) -> Invoice:
    name, data = gen.document("ubl", spec)
    [inv] = hub.deposit(partner, name, data)
    return inv


def ids(c: httpx.Client, **params: str) -> list[str]:
    r = c.get("/api/v1/invoices", params={"limit": "500", **params})
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["invoices"]]


def act(c: httpx.Client, inv: Invoice, status: str, **body: str) -> dict:
    r = c.post(f"/api/v1/invoices/{inv.id}/status", json={"status": status, **body})
    assert r.status_code == 200, (inv.id, status, r.status_code, r.text)
    return r.json()


def refused(c: httpx.Client, inv: Invoice, status: str, **body: str) -> dict:
    r = c.post(f"/api/v1/invoices/{inv.id}/status", json={"status": status, **body})
    assert r.status_code == 409, (inv.id, status, r.status_code, r.text)
    return r.json()


def history(hub: Hub, inv: Invoice) -> list[tuple[str, str]]:
    return [(h.status.name, h.actor.value) for h in hub.store.invoice_history(inv.id)]


def reported(hub: Hub, partner: str, inv: Invoice) -> list[tuple[str | None, ...]]:
    """(IdStatut, LibelleStatut, Acteur, Motif) of `inv` in the status return flows sent to `partner` so far."""
    out = []
    for path in sorted(hub.outbox(partner).glob("ST*.xml")):
        returnflow.validate(path)
        for e in etree.parse(str(path)).iter("CPPFactureStatut"):
            if e.findtext("IdFacture") == inv.id:
                out.append(
                    tuple(e.findtext(f"DonneesStatut/{k}") for k in ("IdStatut", "LibelleStatut", "Acteur", "Motif"))
                )
    return out


def reported_when(hub: Hub, partner: str, inv: Invoice, n: int) -> list[tuple[str | None, ...]]:
    return wait_until(lambda: len(got := reported(hub, partner, inv)) >= n and got, WAIT, f"{inv.id}'s changes")


# ---- 8. the end of the contract ---------------------------------------------------------------------------


def test_the_final_statement_walks_to_the_signed_dgd(ready: Hub) -> None:
    hub = ready
    a7s, a18s, a20s, a8s = (d.specs[0] for d in FINAL.deposits)
    moe, buyer, titulaire = dict(a7s.supporting)["MOE"], a7s.buyer_siret, a7s.supplier_siret
    a7 = deposit(hub, "titulaire-dgd", a7s)
    assert (a7.framework, a7.status, a7.holder) == (Framework.A7, S.MISE_A_DISPOSITION_MOE, moe)
    with hub.client(moe) as c:
        assert a7.id in ids(c, status="MISE_A_DISPOSITION_MOE")
        act(c, a7, "PRISE_EN_COMPTE_MOE")
    a18 = deposit(hub, "moe-dgd", a18s)
    assert (a18.framework, a18.status, a18.holder) == (Framework.A18, S.MISE_A_DISPOSITION_MOA, buyer)
    assert (a18.previous_id, a18.billing_file_id, hub.piece(a7.id).due_at) == (a7.id, a7.id, None)
    with hub.client(buyer) as c:
        assert a18.id in ids(c, status="MISE_A_DISPOSITION_MOA")
        act(c, a18, "PRISE_EN_COMPTE_MOA")
        act(c, a18, "TRANSMISE_MOA")
    a20 = deposit(hub, "moa-dgd", a20s)
    assert (a20.framework, a20.status, a20.holder) == (Framework.A20, S.A_ASSOCIER_FOURNISSEUR, titulaire)
    assert (a20.previous_id, a20.billing_file_id, a20.due_at) == (a18.id, a7.id, None)
    with hub.client(titulaire) as c:  # the titulaire's turn: it signs by depositing its DGD, not by a status
        assert ids(c, status="A_ASSOCIER_FOURNISSEUR") == [a20.id]
        assert refused(c, a20, "TRANSMISE_MOA")["allowed"] == []
    with hub.client(buyer) as c:
        assert a20.id not in ids(c)
    a8 = deposit(hub, "titulaire-dgd", a8s)
    assert (a8.framework, a8.previous_id, a8.billing_file_id) == (Framework.A8, a20.id, a7.id)
    hub.reaches(a8.id, S.MISE_A_DISPOSITION)
    assert hub.delivered(a8.id).is_file()
    with hub.client(buyer) as c:
        assert a8.id in ids(c, status="MISE_A_DISPOSITION")
        act(c, a8, "SERVICE_FAIT")
        act(c, a8, "MANDATEE")
        file = c.get(f"/api/v1/billing-files/{a8.id}")
    assert file.status_code == 200, file.text
    body = file.json()
    assert body["id"] == a7.id
    assert [(p["id"], p["framework"], p["depositor"], p["status"]["label"]) for p in body["pieces"]] == [
        (a7.id, "A7", "supplier", "PRISE_EN_COMPTE_MOE"),
        (a18.id, "A18", "moe", "TRANSMISE_MOA"),
        (a20.id, "A20", "moa", "A_ASSOCIER_FOURNISSEUR"),
        (a8.id, "A8", "supplier", "MANDATEE"),
    ]
    assert [[(h["status"], h["actor"]) for h in p["history"]] for p in body["pieces"]] == [
        [("MISE_A_DISPOSITION_MOE", "platform"), ("PRISE_EN_COMPTE_MOE", "moe")],
        [("MISE_A_DISPOSITION_MOA", "platform"), ("PRISE_EN_COMPTE_MOA", "moa"), ("TRANSMISE_MOA", "moa")],
        [("A_ASSOCIER_FOURNISSEUR", "platform")],
        [("DEPOSEE", "platform"), ("MISE_A_DISPOSITION", "platform"), ("SERVICE_FAIT", "recipient"),
         ("MANDATEE", "recipient")],
    ]  # fmt: skip
    # each depositor hears its pieces' changes: the MOE's A18 taken and transmitted by the MOA
    assert [r[1:3] for r in reported_when(hub, "moe-dgd", a18, 2)] == [
        ("PRISE_EN_COMPTE_MOA", "MOA"),
        ("TRANSMISE_MOA", "MOA"),
    ]


# ---- 9. the tacit procedure -------------------------------------------------------------------------------


def test_an_a22_replaces_the_draft_then_the_tacit_dgd_goes_to_the_finance_service(ready: Hub) -> None:
    hub = ready
    a7s, a22s, a23s = (d.specs[0] for d in TACIT.deposits)
    moe, buyer = dict(a7s.supporting)["MOE"], a7s.buyer_siret
    a7 = deposit(hub, "titulaire-tacite", a7s)
    with hub.client(moe) as c:
        act(c, a7, "PRISE_EN_COMPTE_MOE")
    a22 = deposit(hub, "titulaire-tacite", a22s)
    assert (a22.framework, a22.status, a22.holder) == (Framework.A22, S.MISE_A_DISPOSITION_MOA, buyer)
    assert (a22.previous_id, a22.billing_file_id) == (a7.id, a7.id)
    replaced = hub.piece(a7.id)
    assert (replaced.status, replaced.holder, replaced.due_at) == (S.REMPLACEE_PAR_A22, None, None)
    assert history(hub, a7) == [
        ("MISE_A_DISPOSITION_MOE", "platform"),
        ("PRISE_EN_COMPTE_MOE", "moe"),
        ("REMPLACEE_PAR_A22", "platform"),
    ]
    with hub.client(moe) as c:  # the MOE's turn is over
        assert a7.id not in ids(c)
        assert refused(c, a7, "REFUSEE_MOE", reason="Hors délai", reason_code="AUTRE")["current"] == "REMPLACEE_PAR_A22"
    why = REPLACED_REASON.format(id=a22.id)
    assert reported_when(hub, "titulaire-tacite", a7, 2) == [
        (S.PRISE_EN_COMPTE_MOE.code, "PRISE_EN_COMPTE_MOE", "MOE", None),
        (S.REMPLACEE_PAR_A22.code, "REMPLACEE_PAR_A22", "PLATEFORME", why),
    ]
    with hub.client(buyer) as c:
        assert a22.id in ids(c, status="MISE_A_DISPOSITION_MOA")
        act(c, a22, "PRISE_EN_COMPTE_MOA")
    a23 = deposit(hub, "titulaire-tacite", a23s)
    assert (a23.framework, a23.previous_id, a23.billing_file_id) == (Framework.A23, a22.id, a7.id)
    hub.reaches(a23.id, S.MISE_A_DISPOSITION)
    assert hub.delivered(a23.id).is_file()
    with hub.client(buyer) as c:
        assert a23.id in ids(c, status="MISE_A_DISPOSITION")
        act(c, a23, "SERVICE_FAIT")
        body = c.get(f"/api/v1/billing-files/{a7.id}").json()
    assert [(p["id"], p["framework"], p["status"]["label"]) for p in body["pieces"]] == [
        (a7.id, "A7", "REMPLACEE_PAR_A22"),
        (a22.id, "A22", "PRISE_EN_COMPTE_MOA"),
        (a23.id, "A23", "SERVICE_FAIT"),
    ]
    [entry] = [h for h in body["pieces"][0]["history"] if h["status"] == "REMPLACEE_PAR_A22"]
    assert (entry["actor"], entry["reason"]) == ("platform", why)


def test_an_a22_replaces_the_moes_general_statement_then_the_moas_dgd(ready: Hub) -> None:
    hub = ready
    a7s, a18s, _, _ = (d.specs[0] for d in REPLACED_AT_MOA.deposits)
    buyer = a7s.buyer_siret
    a7 = deposit(hub, "titulaire-tacite", a7s)
    a18 = deposit(hub, "moe-tacite", a18s)
    assert a18.status is S.MISE_A_DISPOSITION_MOA
    # the titulaire's draft general statement follows the MOE's A18 (the MOA did not notify the A20 in time)
    a22s = dataclasses.replace(a18s, number=a18s.number.replace("A18", "A22"), framework="A22", previous=a18s.number)
    a22 = deposit(hub, "titulaire-tacite", a22s)
    assert (a22.status, a22.previous_id, a22.billing_file_id) == (S.MISE_A_DISPOSITION_MOA, a18.id, a7.id)
    assert hub.piece(a18.id).status is S.REMPLACEE_PAR_A22
    assert hub.piece(a7.id).status is S.MISE_A_DISPOSITION_MOE  # the A7 is the A18's, left alone
    with hub.client(buyer) as c:
        assert a18.id not in ids(c) and a22.id in ids(c, status="MISE_A_DISPOSITION_MOA")
        assert refused(c, a18, "TRANSMISE_MOA")["current"] == "REMPLACEE_PAR_A22"
    # the MOE deposited the A18: the MOE hears it was replaced
    assert [r[1:3] for r in reported_when(hub, "moe-tacite", a18, 1)] == [("REMPLACEE_PAR_A22", "PLATEFORME")]
    a25s = dataclasses.replace(a22s, number=a22s.number.replace("A22", "A25"), framework="A25", previous=a22s.number)
    a25 = deposit(hub, "moa-tacite", a25s)
    assert (a25.framework, a25.previous_id, a25.billing_file_id) == (Framework.A25, a22.id, a7.id)
    hub.reaches(a25.id, S.MISE_A_DISPOSITION)
    assert hub.delivered(a25.id).is_file()
    assert (a7.id, a18.id) in hub.links() and (a18.id, a22.id) in hub.links() and (a22.id, a25.id) in hub.links()
