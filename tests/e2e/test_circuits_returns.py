"""The billing circuits end to end, continued (tests/e2e/test_circuits.py runs first on the same hub):

7. kill -9 in the middle of circuit steps: 40 sub-contractor pieces in flight, half validated through the API
   while the other half reach their deadline, and a batch of followers (some racing for the same piece);
   `relais run` is SIGKILLed while it processes the followers and while it applies the deadlines, restarted,
   and everything ends where it should;
6. then, over everything the scenarios did on this hub: every dropped file is one flow in a final state,
   every piece recorded once, every association link taken once, every delivery made once, and each
   depositor's status return flows (XSD-valid) report every status change of its pieces once, in order.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path

from lxml import etree

from flows.domain.lifecycle import FINAL_FLOW_STATUSES
from flows.domain.lifecycle import InvoiceStatus as S
from flows.domain.model import Invoice
from flows.returns import report as returnflow
from relais import generate as gen
from relais.generate.batch import write_specs
from relais.generate.circuits import circuit_set
from tests.support.circuit_hub import WAIT, Hub
from tests.support.waiting import wait_until

RECIPIENTS = gen.sample_directory()
REFUSED = {S.REJETEE, S.REJETEE_ROUTAGE, S.REFUSEE_1, S.REFUSEE_2, S.REFUSEE_MOE, S.REFUSEE_MOA}


def _batch(hub: Hub, partner: str, specs, name: str) -> tuple[str, bytes]:  # type: ignore[no-untyped-def]
    [path] = write_specs(hub.base / "batches" / name, "ubl", specs, "zip", name)
    return path.name, path.read_bytes()


def _settled(hub: Hub, partner: str, name: str, data: bytes) -> list[Invoice]:
    return list(hub.store.iter_invoices(hub.processed(partner, name, data, timeout=3 * WAIT).id))


def _kill_when(hub: Hub, what: str, condition):  # type: ignore[no-untyped-def]
    """SIGKILL `relais run` as soon as `condition()` gives something (polled every 10 ms), then restart it;
    what it gave."""
    seen = wait_until(condition, 3 * WAIT, what, every=0.01)
    hub.kill_run()
    hub.start_run()
    return seen


# ---- 7. kill -9 in the middle of circuit steps -----------------------------------------------------------


def test_kill_9_in_the_middle_of_circuit_steps(hub: Hub) -> None:
    rng = random.Random(7)
    subs = circuit_set("subcontract", 40, 1, RECIPIENTS, seed=41, start=41_000)
    works = circuit_set("works", 20, 1, RECIPIENTS, seed=42, start=42_000)
    hub.actors([*subs.actors, *works.actors])
    a9_name, a9_data = _batch(hub, "sous-traitant", subs.deposits[0].specs, "lot-a9")
    a4_name, a4_data = _batch(hub, "titulaire", works.deposits[0].specs, "lot-a4")
    hub.drop("sous-traitant", a9_name, a9_data)
    hub.drop("titulaire", a4_name, a4_data)
    a9s, a4s = _settled(hub, "sous-traitant", a9_name, a9_data), _settled(hub, "titulaire", a4_name, a4_data)
    assert {i.status for i in a9s} == {S.A_VALIDER_1} and len(a9s) == 40
    assert {i.status for i in a4s} == {S.MISE_A_DISPOSITION_MOE} and len(a4s) == 20
    by_api, by_deadline = a9s[::2], a9s[1::2]
    followers = list(works.deposits[1].specs)
    racers = [f.__class__(**{**f.__dict__, "number": f.number + "-BIS"}) for f in followers[:5]]  # same A4s
    f_name, f_data = _batch(hub, "moe", followers + racers, "lot-a15")

    answers: list[int] = []

    def validate() -> None:  # the titulaires answer through the API meanwhile (the API is up all along)
        for inv in by_api:
            with hub.client(inv.validator_1 or "") as c:
                answers.append(c.post(f"/api/v1/invoices/{inv.id}/status", json={"status": "VALIDEE_1"}).status_code)

    validating = threading.Thread(target=validate)
    validating.start()
    hub.due_now(i.id for i in by_deadline)  # their 15 days pass
    hub.drop("moe", f_name, f_data)

    def taking_followers():  # type: ignore[no-untyped-def]
        flows = [f for f in hub.store.list_flows(partner="moe", limit=50) if f.original_name == f_name]
        return flows and rng.random() < 0.3 and flows[0]  # soon after the flow appears: during its processing

    killed_in = _kill_when(hub, "the followers' flow to be taken", taking_followers)
    assert killed_in.status not in FINAL_FLOW_STATUSES  # the kill came in the middle of its processing
    moved = {S.ABSENCE_VALIDATION_1_HORS_DELAI, S.MISE_A_DISPOSITION}

    def applying_deadlines() -> bool:
        return any(hub.piece(i.id).status in moved for i in by_deadline)

    _kill_when(hub, "the deadlines to be applied", applying_deadlines)
    validating.join()
    assert answers == [200] * len(by_api)

    flow = hub.processed("moe", f_name, f_data, timeout=3 * WAIT)
    taken = list(hub.store.iter_invoices(flow.id))
    assert len(taken) == 25
    lost = {i.number for i in taken if i.status is S.REJETEE}
    assert len(lost) == 5 and all("RLS-P20" in {e.rule for e in i.errors} for i in taken if i.status is S.REJETEE)
    won = [i for i in taken if i.status is not S.REJETEE]
    assert {i.status for i in won} == {S.MISE_A_DISPOSITION_MOA} and len({i.previous_id for i in won}) == 20
    returnflow.validate(hub.report(flow))
    for inv in a9s:
        hub.delivered(inv.id, timeout=3 * WAIT)
        assert hub.piece(inv.id).status is S.MISE_A_DISPOSITION
    for inv in by_deadline:
        assert [h.status for h in hub.store.invoice_history(inv.id)] == [
            S.A_VALIDER_1,
            S.ABSENCE_VALIDATION_1_HORS_DELAI,
            S.MISE_A_DISPOSITION,
        ]
    for inv in by_api:
        assert [h.status for h in hub.store.invoice_history(inv.id)] == [
            S.A_VALIDER_1,
            S.VALIDEE_1,
            S.MISE_A_DISPOSITION,
        ]


# ---- 6. and everything exactly once --------------------------------------------------------------------


def test_everything_once_and_every_change_reported_once_in_order(hub: Hub) -> None:

    flows = hub.store.list_flows(limit=100_000)
    assert flows and len(hub.dropped) == len(flows)
    assert Counter((f.partner, f.original_name) for f in flows) == Counter(hub.dropped)  # one flow per file
    wait_until(
        lambda: all(f.status in FINAL_FLOW_STATUSES for f in hub.store.list_flows(limit=100_000)), WAIT, "final flows"
    )
    pieces = hub.all_invoices()
    assert [k for k, n in Counter((i.supplier_id, i.number) for i in pieces).items() if n > 1] == []
    # every association link taken once: by the followers still standing, and by them only
    standing = {(i.previous_id, i.id) for i in pieces if i.previous_id and i.status not in REFUSED}
    assert hub.links() == standing
    assert len({p for p, _ in standing}) == len(standing)
    # every delivery once: one file, one sent delivery row, for each piece that reached its recipient
    delivery = [p for p in (hub.home / "delivery").rglob("*") if p.is_file()]
    reached = {h.invoice_id for h in hub.store.iter_history() if h.status is S.MISE_A_DISPOSITION}
    assert sorted(Path(p).stem for p in delivery) == sorted(reached)
    for f in flows:
        sent = Counter(
            r.invoice_id for r in hub.store.outbox_for_flow(f.id) if r.kind == "delivery" and r.status == "sent"
        )
        assert all(n == 1 for n in sent.values()) and set(sent) == {i for i in reached if i.startswith(f.id)}
    # each depositor hears every change of its pieces once, in order, in XSD-valid status return flows
    for partner in sorted({p for p, _ in hub.dropped}):
        changes = [
            (h.invoice_id, h.status.code)
            for h in hub.store.iter_history()
            if h.previous is not None and h.partner == partner
        ]

        def reported(partner: str = partner) -> list[tuple[str | None, str | None]]:
            out = []
            for path in sorted(hub.outbox(partner).glob("ST*.xml")):
                out += [
                    (e.findtext("IdFacture"), e.findtext("DonneesStatut/IdStatut"))
                    for e in etree.parse(str(path)).iter("CPPFactureStatut")
                ]
            return out

        wait_until(
            lambda changes=changes, reported=reported: reported() == changes or None, WAIT, f"{partner}'s changes"
        )
        for path in hub.outbox(partner).glob("ST*.xml"):
            returnflow.validate(path)
