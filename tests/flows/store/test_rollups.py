"""The dashboard's daily roll-ups (flows/store/rollups.py, migration 0021) give the figures the flows and
findings give, exactly: the landing page's and the rejects page's context computed from the roll-ups is
the one computed by the aggregate queries over the flows (`Store.dashboard_from_rollups = False`), on SQLite
and on PostgreSQL, for a varied history written through the store's own methods (flows of three partners
over several days, accepted, partly and wholly rejected, a qualification flow, findings twice on one
invoice, reprocessed and reopened flows whose findings are superseded, a flow closed twice), then after a
compaction, and after a rebuild.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa

from flows.domain import lifecycle
from flows.domain.model import Channel, Flag, Flow, FlowStatus, Invoice, InvoiceStatus, ValidationError, invoice_id
from flows.store import Store
from flows.store import tables as t
from flows.store.rollups import rollup_flows, rollup_rejects
from relais.web.views import dashboard

TODAY = dt.date(2024, 5, 20)
NOW = dt.datetime(2024, 5, 20, 18, 0, tzinfo=dt.UTC)


def _fatal(rule: str, where: str = "/Invoice") -> ValidationError:
    return ValidationError(rule, Flag.FATAL, where, f"{rule} : règle non respectée")


def _warning(rule: str) -> ValidationError:
    return ValidationError(rule, Flag.WARNING, "/Invoice", f"{rule} : avertissement")


def _flow(store: Store, n: int, partner: str, day: int, hour: int) -> Flow:
    when = dt.datetime(2024, 5, day, hour, n % 60, 59, tzinfo=dt.UTC)
    flow = Flow(
        id="",
        partner=partner,
        channel=Channel.FOLDER,
        original_name=f"lot-{n}.zip",
        size=100 + n,
        sha256=f"{n:064x}",
        received_at=when,
    )
    return store.create_flow(flow)


def _judge(store: Store, flow: Flow, verdicts: list[list[ValidationError]], status: FlowStatus) -> None:
    """Claim the flow, record its invoices (each with its findings) and close it with `status`."""
    assert store.claim_flow(flow.id, [flow.status], lifecycle.IN_PROGRESS)
    invoices = []
    for pos, errors in enumerate(verdicts, 1):
        rejected = any(e.flag == Flag.FATAL for e in errors)
        invoices.append(
            Invoice(
                id=invoice_id(flow.id, pos),
                flow_id=flow.id,
                position=pos,
                entry_name=f"f-{pos}.xml",
                status=InvoiceStatus.REJETEE if rejected else InvoiceStatus.DEPOSEE,
                number=f"{flow.id}-{pos}",
                errors=list(errors),
            )
        )
    store.save_invoices(invoices, [])
    flow = store.get_flow(flow.id) or flow
    flow.status = status
    flow.invoice_count = len(verdicts)
    flow.rejected_count = sum(any(e.flag == Flag.FATAL for e in errors) for errors in verdicts)
    store.update_flow(flow)


def _history(store: Store) -> None:
    ok, partial, bad = FlowStatus.IN_INTEGRE, FlowStatus.IN_INTEGRE_PARTIEL, FlowStatus.IN_REJETE
    n = 0
    for day in (12, 14, 18, 19, 20):  # the 12th: out of a 7-day period
        for partner in ("op-a", "op-b", "op-c"):
            n += 1
            _judge(store, _flow(store, n, partner, day, 9), [[], [_warning("BR-FR-30")]], ok)
            n += 1
            verdicts = [
                [],
                [_fatal("BR-FR-12"), _fatal("BR-FR-12", "/Invoice/cac:BillingReference")],
                [_fatal("BR-05")],
            ]
            _judge(store, _flow(store, n, partner, day, 11), verdicts, partial)
            n += 1
            _judge(store, _flow(store, n, partner, day, 15), [[_fatal("BR-FR-12")]], bad)
    # A whole flow rejected (a finding on no invoice), at 23:59:59: still its UTC day.
    whole = _flow(store, 90, "op-a", 18, 23)
    store.add_flow_errors(whole.id, [_fatal("RLS-F01", "lot.zip"), _fatal("RLS-F01", "lot.zip#2")])
    whole = dataclasses.replace(store.get_flow(whole.id) or whole, status=bad)
    store.update_flow(whole)
    # Two findings of one invoice and rule in one statement (one INSERT of several rows).
    twice = _flow(store, 91, "op-b", 19, 16)
    _judge(store, twice, [[]], ok)
    row = {"flow_id": twice.id, "invoice_id": invoice_id(twice.id, 1), "rule": "BR-CO-10", "flag": "fatal"}
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(t.validation_errors).values(
                [{**row, "location": "/a", "message": "x"}, {**row, "location": "/b", "message": "y"}]
            )
        )
    # A qualification flow: never counted on these pages.
    qualif = _flow(store, 92, "op-c", 20, 10)
    qualif.qualification = True
    store.update_flow(qualif)
    _judge(store, qualif, [[_fatal("BR-FR-12")]], bad)
    # Flows still in progress and an incident.
    _flow(store, 93, "op-a", 20, 12)
    incident = _flow(store, 94, "op-b", 20, 13)
    incident.status = FlowStatus.IN_INCIDENTE
    store.update_flow(incident)


def _reprocess(store: Store) -> None:
    """A rejected flow reprocessed (its findings superseded, judged again: accepted now), a partly rejected
    one reopened (its rejected invoices judged again), and one closed twice with the same verdict."""
    with store.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(sa.select(t.flows.c.id).order_by(t.flows.c.id))]
    rejected = next(i for i in ids if (store.get_flow(i) or None).status is FlowStatus.IN_REJETE)
    store.reset_flow_results(rejected)
    flow = store.get_flow(rejected)
    assert flow is not None
    flow.status = FlowStatus.IN_INTEGRE
    flow.rejected_count = 0
    flow.invoice_count = 1
    store.update_flow(flow)
    partial = next(i for i in ids if (store.get_flow(i) or None).status is FlowStatus.IN_INTEGRE_PARTIEL)
    assert store.reopen_flow(partial, "test")
    flow = store.get_flow(partial)
    assert flow is not None
    flow.status = FlowStatus.IN_INTEGRE
    flow.rejected_count = 0
    store.update_flow(flow)
    twice = store.get_flow(ids[-1])
    assert twice is not None
    store.update_flow(twice)  # closed again, nothing changed
    store.update_flow(twice)


def _pages(store: Store, partner: str | None, days: int) -> tuple[dict, dict]:
    home = dashboard.home_context(store, partner, days=days, today=TODAY, now=NOW)
    rejects = dashboard.rejects_context(store, partner, days=days, today=TODAY)
    return home, rejects


def _same_figures(store: Store) -> None:
    for partner in (None, "op-a", "op-b", "nobody"):
        for days in (1, 3, 7, 30):
            store.dashboard_from_rollups = True
            from_rollups = _pages(store, partner, days)
            limited = (
                store.top_reject_rules(days, partner, 2, today=TODAY),
                store.rejects_by_rule(days, partner, 1, today=TODAY),
            )
            store.dashboard_from_rollups = False
            assert from_rollups == _pages(store, partner, days), (partner, days)
            assert limited == (
                store.top_reject_rules(days, partner, 2, today=TODAY),
                store.rejects_by_rule(days, partner, 1, today=TODAY),
            )
    store.dashboard_from_rollups = True


def _rollup_sums(store: Store) -> dict:
    out = {}
    with store.engine.connect() as conn:
        for table, key in ((rollup_flows, "status"), (rollup_rejects, "rule")):
            c = table.c
            counts = [
                col for col in c if col.name not in ("id", "day", "partner", key, "merged", "first_flow", "last_flow")
            ]
            q = sa.select(c.day, c.partner, c[key], *[sa.func.sum(col) for col in counts]).group_by(
                c.day, c.partner, c[key]
            )
            out[table.name] = {tuple(r[:3]): tuple(r[3:]) for r in conn.execute(q) if any(r[3:])}
    return out


def test_the_pages_figures_from_the_rollups_are_those_of_the_flows(store):
    _history(store)
    _same_figures(store)
    _reprocess(store)
    _same_figures(store)
    home, rejects = _pages(store, None, 7)
    assert home["totals"]["flows"] > 30 and rejects["rules"]  # a history that shows something
    assert "BR-CO-10" in [r["rule"] for r in rejects["rules"]]
    assert store.rollups_fresh() > 0
    summed = _rollup_sums(store)
    assert store.compact_rollups() > 0
    assert store.rollups_fresh() == 0
    assert _rollup_sums(store) == summed
    _same_figures(store)
    store.rebuild_rollups()
    assert _rollup_sums(store) == summed  # the triggers' counts are the recount's
    _same_figures(store)


def test_a_flow_closing_twice_is_counted_once(store):
    flow = _flow(store, 1, "op-a", 20, 9)
    _judge(store, flow, [[_fatal("BR-FR-12")]], FlowStatus.IN_REJETE)
    closed = store.get_flow(flow.id)
    assert closed is not None
    for _ in range(3):
        store.update_flow(closed)
    assert store.flows_per_day(1, today=TODAY) == [(TODAY, {"IN_REJETE": 1})]
    assert store.invoices_per_day(1, today=TODAY) == [(TODAY, {"accepted": 0, "rejected": 1})]
    [rule] = store.rejects_by_rule(1, today=TODAY)
    assert (rule.rule, rule.invoices, rule.flows, rule.findings) == ("BR-FR-12", 1, 1, 1)
    store.reset_flow_results(flow.id)  # reprocessed: its finding superseded
    assert store.rejects_by_rule(1, today=TODAY) == []
    assert store.flows_per_day(1, today=TODAY) == [(TODAY, {"IN_REJETE": 1})]


def test_relais_db_rollups_rebuild_and_compact(tmp_path):
    from click.testing import CliRunner

    from relais.cli.root import main

    cli = CliRunner()
    home = tmp_path / "h"
    assert cli.invoke(main, ["--home", str(home), "db", "upgrade"]).exit_code == 0
    store = Store.open(f"sqlite:///{home / 'relais.db'}", migrate=False)
    try:
        flow = _flow(store, 1, "op-a", 20, 9)
        _judge(store, flow, [[_fatal("BR-FR-12")], []], FlowStatus.IN_INTEGRE_PARTIEL)
        summed = _rollup_sums(store)
        assert summed and store.rollups_fresh() > 0
        compact = cli.invoke(main, ["--home", str(home), "db", "rollups", "compact"])
        assert compact.exit_code == 0 and "compactés" in compact.stdout, compact.output
        assert store.rollups_fresh() == 0 and _rollup_sums(store) == summed
        with store.engine.begin() as conn:  # a roll-up gone wrong (a restore, a manual edit)
            conn.execute(sa.delete(rollup_rejects))
        assert store.rejects_by_rule(1, today=TODAY) == []
        rebuilt = cli.invoke(main, ["--home", str(home), "db", "rollups", "rebuild"])
        assert rebuilt.exit_code == 0 and "recomptés" in rebuilt.stdout, rebuilt.output
        assert _rollup_sums(store) == summed
        assert [r.rule for r in store.rejects_by_rule(1, today=TODAY)] == ["BR-FR-12"]
    finally:
        store.close()


def test_rollups_out_of_step_fall_back_to_counting(store):
    flow = _flow(store, 1, "op-a", 20, 9)
    _judge(store, flow, [[_fatal("BR-FR-12")]], FlowStatus.IN_REJETE)
    with store.engine.begin() as conn:  # a rule the findings do not have (rows loaded without the triggers)
        conn.execute(
            sa.insert(rollup_rejects).values(
                day=TODAY, partner="op-a", rule="BR-XX", invoices=1, whole_flows=0, flows=1, findings=1, merged=True
            )
        )
    counted = store.rejects_by_rule(1, today=TODAY)
    assert [r.rule for r in counted] == ["BR-FR-12"]
    store.dashboard_from_rollups = False
    assert store.rejects_by_rule(1, today=TODAY) == counted
