"""The lifecycles as state machines (hypothesis `RuleBasedStateMachine`), through the real store.

Invoices: every status change goes through `flows.pipeline.status_changes.change`, as any actor, to any
status, with or without a reason. A model holds what the table (`flows.domain.lifecycle.INVOICE`) allows;
the machine checks that every move the table allows is made and every other one is refused with nothing
changed (the invoice tables compared row for row), and that the history is append-only and tells the moves
made, in order, each one allowed by the table.

Flows: the store's moves (`claim_flow` from any statuses to any status, with takeovers and due incidents,
`requeue_flow`, `reopen_flow`) and the pipeline's closing moves (`check_transition` then `update_flow`);
every status sequence a flow goes through is a walk in `flows.domain.lifecycle.FLOW`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from flows.domain import lifecycle as lc
from flows.domain import reasons as reason_codes
from flows.domain.history import Source
from flows.domain.lifecycle import Actor, FlowStatus, IllegalTransition, InvoiceStatus
from flows.domain.model import Channel, Flow, Invoice, invoice_id, utcnow
from flows.pipeline import status_changes
from flows.store import Store
from flows.store import tables as t
from tests.support.fuzzing import bounded

# Reasons as people type them (the API and the CLI take any text); SQLite cannot store lone surrogates.
REASONS = st.one_of(
    st.none(),
    st.sampled_from(["", "  ", "Montant erroné", "x" * 2100]),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
)


@dataclasses.dataclass
class Model:
    status: InvoiceStatus
    history: list[tuple[object, ...]]  # (status, previous, actor, source, reason) of each entry, in order


def _rows(store: Store, flow_id: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row a status change of the flow's invoices may touch, in a stable order."""
    ids = sa.select(t.invoices.c.id).where(t.invoices.c.flow_id == flow_id)
    queries = {
        "flows": sa.select(t.flows).where(t.flows.c.id == flow_id),
        "invoices": sa.select(t.invoices).where(t.invoices.c.flow_id == flow_id),
        "history": sa.select(t.invoice_history).where(t.invoice_history.c.invoice_id.in_(ids)),
        "numbers": sa.select(t.invoice_numbers).where(t.invoice_numbers.c.invoice_id.in_(ids)),
    }
    with store.engine.connect() as conn:
        return {name: sorted(tuple(map(repr, r)) for r in conn.execute(q)) for name, q in queries.items()}


class InvoiceMachine(RuleBasedStateMachine):
    """One flow's invoices, moved by anyone to anything."""

    store: Store  # set by the test

    invoices = Bundle("invoices")

    def __init__(self) -> None:
        super().__init__()
        self.flow = self.store.create_flow(
            Flow(id="", partner="op-a", channel=Channel.FOLDER, original_name="lot.zip", size=1, sha256="ab" * 32)
        )
        self.model: dict[str, Model] = {}
        self.seen: dict[str, list] = {}  # invoice -> its history entries as last read (ids and times included)

    @rule(target=invoices, initial=st.sampled_from([InvoiceStatus.DEPOSEE, *sorted(lc.INVOICE.initial)]))
    def record(self, initial: InvoiceStatus) -> str:
        position = len(self.model) + 1
        invoice = Invoice(
            id=invoice_id(self.flow.id, position),
            flow_id=self.flow.id,
            position=position,
            entry_name=f"f{position}.xml",
            status=initial,
        )
        self.store.save_invoices([invoice], [])
        [first] = self.store.invoice_history(invoice.id)
        assert (first.status, first.previous, first.actor) == (initial, None, Actor.PLATFORM)
        self.model[invoice.id] = Model(initial, [(initial, None, first.actor, first.source, first.reason)])
        return invoice.id

    @rule(
        invoice=invoices,
        to=st.sampled_from(list(InvoiceStatus)),
        actor=st.sampled_from(list(Actor)),
        source=st.sampled_from(list(Source)),
        reason=REASONS,
    )
    def move(self, invoice: str, to: InvoiceStatus, actor: Actor, source: Source, reason: str | None) -> None:
        """Anyone asks for any status (mostly refused)."""
        self._change(invoice, to, actor, source, reason)

    @rule(invoice=invoices, steps=st.integers(1, 8), data=st.data())
    def follow_the_table(self, invoice: str, steps: int, data: st.DataObject) -> None:
        """A walk of moves the table offers from the invoice's status, each by one of its actors."""
        for _ in range(steps):
            moves = [tr for tr in lc.INVOICE.transitions if tr.source is self.model[invoice].status]
            if not moves:
                return
            move = data.draw(st.sampled_from(moves))
            actor = data.draw(st.sampled_from(sorted(move.actors)))
            self._change(invoice, move.target, actor, data.draw(st.sampled_from(list(Source))), data.draw(REASONS))

    def _change(self, invoice: str, to: InvoiceStatus, actor: Actor, source: Source, reason: str | None) -> None:
        model = self.model[invoice]
        given = (reason or "").strip()[: status_changes.MAX_REASON] or None
        before = _rows(self.store, self.flow.id)
        # A refusal or suspension by an actor through the API carries a reason code (flows.domain.reasons).
        code = reason_codes.REASONS.allowed(to)[0] if to.needs_reason else None
        if to.needs_reason and given is None:
            with pytest.raises(status_changes.ReasonRequired):
                status_changes.change(self.store, invoice, to, actor=actor, source=source, reason=reason)
            assert _rows(self.store, self.flow.id) == before
            return
        if code is not None and source is Source.API and actor is not Actor.PLATFORM:
            # Without its code: a move not allowed is said first (409), then the missing code (422).
            allowed = lc.INVOICE.allowed(model.status, to, actor)
            with pytest.raises(reason_codes.ReasonCodeRefused if allowed else IllegalTransition):
                status_changes.change(self.store, invoice, to, actor=actor, source=source, reason=reason)
            assert _rows(self.store, self.flow.id) == before
        if not lc.INVOICE.allowed(model.status, to, actor):
            with pytest.raises(IllegalTransition) as refused:
                status_changes.change(
                    self.store, invoice, to, actor=actor, source=source, reason=reason, reason_code=code
                )
            assert (refused.value.source, refused.value.target) == (model.status, to)
        else:
            entry = status_changes.change(
                self.store, invoice, to, actor=actor, source=source, reason=reason, reason_code=code
            )
            assert (entry.status, entry.previous, entry.actor, entry.source, entry.reason, entry.reason_code) == (
                to,
                model.status,
                actor,
                source,
                given,
                code,
            )
            model.status = to
            model.history.append((to, entry.previous, actor, source, given))
            return
        assert _rows(self.store, self.flow.id) == before  # refused: nothing changed, anywhere

    @rule(target_status=st.sampled_from(list(InvoiceStatus)), actor=st.sampled_from(list(Actor)))
    def move_unknown(self, target_status: InvoiceStatus, actor: Actor) -> None:
        before = _rows(self.store, self.flow.id)
        with pytest.raises(status_changes.UnknownInvoice):
            status_changes.change(
                self.store,
                f"{self.flow.id}-99999",
                target_status,
                actor=actor,
                source=Source.API,
                reason="motif",
                reason_code=reason_codes.REASONS.allowed(target_status)[0] if target_status.needs_reason else None,
            )
        assert _rows(self.store, self.flow.id) == before

    @invariant()
    def store_follows_the_model(self) -> None:
        for invoice, model in self.model.items():
            current = self.store.invoice_status(invoice)
            assert current is not None and current[0] is model.status
            history = self.store.invoice_history(invoice)
            assert [(h.status, h.previous, h.actor, h.source, h.reason) for h in history] == model.history
            # append-only: what was read before is still there, unchanged, ids and times included
            kept = self.seen.get(invoice, [])
            assert history[: len(kept)] == kept
            self.seen[invoice] = history
            # the history is a walk in the table, from a status an invoice may be recorded with
            assert history[0].previous is None and history[0].status in lc.INVOICE.initial
            for before, after in zip(history, history[1:], strict=False):
                assert after.id > before.id and after.at >= before.at
                assert after.previous is before.status
                assert lc.INVOICE.allowed(before.status, after.status, after.actor)


class FlowMachine(RuleBasedStateMachine):
    """One flow, moved by the store's claims, requeues and reopenings and the pipeline's verdicts."""

    store: Store

    def __init__(self) -> None:
        super().__init__()
        self.flow = self.store.create_flow(
            Flow(id="", partner="op-a", channel=Channel.FOLDER, original_name="lot.zip", size=1, sha256="cd" * 32)
        )
        self.status = lc.FlowStatus.IN_RECU
        self.walk: list[FlowStatus] = [self.status]

    def _stored(self) -> FlowStatus:
        flow = self.store.get_flow(self.flow.id)
        assert flow is not None
        return flow.status

    def _moved(self, to: FlowStatus) -> None:
        self.status = to
        self.walk.append(to)

    @rule(
        sources=st.lists(st.sampled_from(list(FlowStatus)), max_size=3),
        to=st.sampled_from(list(FlowStatus)),
        takeover=st.booleans(),
        due=st.booleans(),
    )
    def claim(self, sources: list[FlowStatus], to: FlowStatus, takeover: bool, due: bool) -> None:
        stale = dt.timedelta(seconds=-1) if takeover else None  # anything in `to` counts as stale
        asked = [(s, to) for s in sources]
        if takeover:
            asked.append((to, to))
        if due:
            asked.append((lc.RETRIED_WHEN_DUE, to))
        if not all(lc.FLOW.allowed(a, b) for a, b in asked):
            with pytest.raises(IllegalTransition):
                self.store.claim_flow(self.flow.id, sources, to, stale, due_incidents=due)
            assert self._stored() is self.status
            return
        expected = (
            self.status in sources
            or (takeover and self.status is to)
            or (due and self.status is lc.RETRIED_WHEN_DUE)  # its retry time is always past here
        )
        assert self.store.claim_flow(self.flow.id, sources, to, stale, due_incidents=due) is expected
        if expected:
            self._moved(to)

    @rule(verdict=st.sampled_from(list(FlowStatus)))
    def close(self, verdict: FlowStatus) -> None:
        """What the pipeline does with the flow it holds (`flows.pipeline.process`): check, then save."""
        flow = self.store.get_flow(self.flow.id)
        assert flow is not None
        verdicts = lc.FLOW.targets(self.status, lc.Move.CLOSE) | lc.FLOW.targets(self.status, lc.Move.INCIDENT)
        if verdict not in verdicts:
            if not lc.FLOW.allowed(self.status, verdict):
                with pytest.raises(IllegalTransition):
                    lc.check_transition(self.status, verdict)
            return
        flow.status = lc.check_transition(flow.status, verdict)
        flow.retry_at = utcnow() - dt.timedelta(seconds=5)  # an incident is due for its retry at once
        self.store.update_flow(flow)
        self._moved(verdict)

    @rule(reason=st.one_of(st.none(), st.just("disque plein")))
    def requeue(self, reason: str | None) -> None:
        expected = self.status in lc.FLOW.sources(lc.REQUEUED, lc.Move.REPROCESS)
        assert self.store.requeue_flow(self.flow.id, reason) is expected
        if expected:
            self._moved(lc.REQUEUED)

    @rule()
    def reopen(self) -> None:
        expected = self.status in lc.REOPENABLE
        assert self.store.reopen_flow(self.flow.id, "annuaire corrigé") is expected
        if expected:
            self._moved(lc.REQUEUED)

    @invariant()
    def the_walk_obeys_the_table(self) -> None:
        assert self._stored() is self.status
        assert self.walk[0] in lc.FLOW.initial
        for before, after in zip(self.walk, self.walk[1:], strict=False):
            assert lc.FLOW.allowed(before, after), f"{before} -> {after}"
        assert not any(s.is_reserved for s in self.walk)


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(f"sqlite:///{tmp_path / 'relais.db'}")
    yield s
    s.close()


def test_invoice_moves_follow_the_table_and_the_history_tells_them(store) -> None:
    InvoiceMachine.store = store
    run_state_machine_as_test(InvoiceMachine, settings=bounded(12, stateful_step_count=25))


def test_flow_moves_follow_the_table(store) -> None:
    FlowMachine.store = store
    run_state_machine_as_test(FlowMachine, settings=bounded(30, stateful_step_count=20))
