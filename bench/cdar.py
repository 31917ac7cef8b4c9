"""CDAR lifecycle messages at scale, out and in (docs/reform.md §1, §2): messages/s, status lines/s, per message
p50/p95, peak RSS.

    python bench/cdar.py                                   # 100,000 status changes each way, SQLite
    python bench/cdar.py --changes 2000 --lines-per-message 50
    python bench/cdar.py --db postgres                     # or --db postgresql+psycopg://host/db (a private
                                                           # schema, created and dropped)
    python bench/cdar.py --engine saxon                    # CDAR out checked by Saxon instead of the native engine

Over a fresh home (SQLite in a temporary folder unless ``--db``), with two partner platforms whose vocabulary
is ``cdar``:

- **out**: ``--changes`` history changes of invoices deposited by ``pa-out`` (the buyer's platform's 202, 203,
  204, 205 per invoice, ``--lines-per-message`` invoices per buyer) are reported by the real status return path
  (`flows.pipeline.status_returns.StatusReturns.emit_due` with its `CdarOut`, ``max_entries`` = the lines per
  message): each message written (`flows.returns.cdar`), checked against the official XSD and BR-FR-CDV
  schematron (`validators.cdar`, native engine by default), archived, queued in the outbox and recorded in
  ``cdar_messages``/``cdar_lines``. Write time and check time are measured apart (the check is timed around
  `validators.cdar.check`; the rest of a message's time is archive, queue and record).
- **in**: ``--changes`` status lines in CDAR messages written by `flows.returns.cdar` (202, 203, then 204, 205,
  ``--lines-per-message`` invoices each) from ``pa-in``, the platform the invoices were issued to, dropped as
  files into its drop zone, taken by the intake (archived, recorded as flows) and processed one by one by the
  real pipeline (`flows.pipeline.process.process_flow` → `flows.pipeline.cdar_in`: the official check, the
  RLS-C rules, every line applied and recorded in one transaction).

The invoices are seeded through the store directly (``save_invoices``, history rows in bulk), not measured.
Figures are printed, never asserted; the last line is JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.measure import PeakSampler

PG_URL = "postgresql+psycopg://127.0.0.1/test"
CHUNK = 5000  # invoices per seeded flow
OUT_PARTNER, OUT_PLATFORM = "pa-out", "0101"
IN_PARTNER, IN_PLATFORM = "pa-in", "0102"
SELLER_PARTNER = "vendeur"
ISSUED = dt.date(2026, 3, 2)


def luhn_siren(n: int) -> str:
    """A 9-digit SIREN with a valid Luhn key from an 8-digit number.

    >>> luhn_siren(12345678)
    '123456782'
    """
    base = f"{n:08d}"
    for key in range(10):
        digits = [int(c) for c in base + str(key)]
        total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2) for i, d in enumerate(reversed(digits)))
        if total % 10 == 0:
            return base + str(key)
    raise AssertionError("unreachable")


SELLER_SIRET = luhn_siren(40000000) + "00011"


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def partner_file(settings, partner: str, platform_id: str) -> None:
    settings.partners_dir.mkdir(parents=True, exist_ok=True)
    (settings.partners_dir / f"{partner}.toml").write_text(
        f'id = "{partner}"\nname = "{partner}"\nstatus_vocabulary = "cdar"\nplatform_id = "{platform_id}"\n'
    )
    settings.inbox(partner).mkdir(parents=True, exist_ok=True)
    settings.outbox_dir(partner).mkdir(parents=True, exist_ok=True)


def buyer_siret(group: int) -> str:
    return luhn_siren(50000000 + group) + "00011"


def seed(rt, depositor: str, prefix: str, n: int, per_buyer: int, delivered_to: str | None):
    """`n` invoices deposited by `depositor`, EN_COURS_ACHEMINEMENT (issued to another platform), `per_buyer` per
    buyer; with `delivered_to`, each has a delivery outbox row to that partner (marked sent). Through the store
    (flows and invoices in chunks of CHUNK, one transaction each)."""
    import sqlalchemy as sa

    from flows.domain.lifecycle import InvoiceStatus
    from flows.domain.model import Channel, Flow, FlowStatus, Invoice, Syntax, invoice_id
    from flows.domain.outbox import Address, OutboxKind, OutboxStatus
    from flows.store import tables as t

    invoices: list[Invoice] = []
    for start in range(0, n, CHUNK):
        count = min(CHUNK, n - start)
        [fid] = rt.store.next_flow_ids(1)
        rt.store.create_flow(
            Flow(
                fid,
                depositor,
                Channel.FOLDER,
                f"{prefix}-{start}.zip",
                count,
                uuid.uuid4().hex * 2,
                status=FlowStatus.IN_INTEGRE,
                invoice_count=count,
            )
        )
        chunk = []
        for pos in range(1, count + 1):
            k = start + pos - 1
            chunk.append(
                Invoice(
                    id=invoice_id(fid, pos),
                    flow_id=fid,
                    position=pos,
                    entry_name=f"{prefix}-{k:07d}.xml",
                    number=f"{prefix}-{k:07d}",
                    type_code="380",
                    issue_date=ISSUED,
                    supplier_id=SELLER_SIRET,
                    buyer_siret=buyer_siret(k // per_buyer),
                    currency="EUR",
                    total_without_vat=Decimal("100.00"),
                    total_vat=Decimal("20.00"),
                    syntax=Syntax.UBL_INVOICE,
                    status=InvoiceStatus.EN_COURS_ACHEMINEMENT,
                    routed_platform=IN_PLATFORM if delivered_to else OUT_PLATFORM,
                    routed_away=True,
                )
            )
        deliveries = [(inv, Address("folder", delivered_to, f"{inv.id}.xml")) for inv in chunk] if delivered_to else []
        rt.store.save_invoices(chunk, deliveries)
        invoices += chunk
    if delivered_to:
        o = t.outbox.c
        with rt.store.engine.begin() as conn:
            conn.execute(
                sa.update(t.outbox)
                .where(o.kind == str(OutboxKind.DELIVERY), o.partner == delivered_to)
                .values(status=OutboxStatus.SENT)
            )
    return invoices


# ---- out ---------------------------------------------------------------------------------------------------

OUT_WALK = ("RECUE", "MISE_A_DISPOSITION", "PRISE_EN_CHARGE", "APPROUVEE")  # 202, 203 (305); 204, 205 (23)
IN_WALK = ("202", "203", "204", "205")


def history_changes(rt, invoices, changes: int, per_message: int) -> int:
    """`changes` history rows for the invoices' depositor: per group of `per_message` invoices (one buyer), every
    invoice's 202, then every one's 203, 204, 205, so that each status return is one message of `per_message`
    lines (`max_entries`; one phase, one issuer each). Bulk inserts; the invoices' status set to the last one. The rows written."""
    import sqlalchemy as sa

    from flows.domain.history import Source
    from flows.domain.lifecycle import Actor, InvoiceStatus
    from flows.domain.model import utcnow
    from flows.store import tables as t

    at = utcnow()
    rows: list[dict[str, object]] = []
    last: dict[str, InvoiceStatus] = {}
    for g in range(0, len(invoices), per_message):
        group = invoices[g : g + per_message]
        previous = InvoiceStatus.EN_COURS_ACHEMINEMENT
        for name in OUT_WALK:
            status = InvoiceStatus[name]
            for inv in group:
                if len(rows) >= changes:
                    break
                rows.append(
                    {
                        "invoice_id": inv.id,
                        "partner": OUT_PARTNER,
                        "status": status.code,
                        "previous": previous.code,
                        "actor": str(Actor.PARTNER_PLATFORM),
                        "source": str(Source.CDAR),
                        "reason": None,
                        "at": at,
                    }
                )
                last[inv.id] = status
            previous = status
    with rt.store.engine.begin() as conn:
        for k in range(0, len(rows), 20_000):
            conn.execute(sa.insert(t.invoice_history), rows[k : k + 20_000])
        by_status: dict[str, list[str]] = {}
        for inv_id, status in last.items():
            by_status.setdefault(status.code, []).append(inv_id)
        for code, ids in by_status.items():
            for k in range(0, len(ids), 5000):
                conn.execute(sa.update(t.invoices).where(t.invoices.c.id.in_(ids[k : k + 5000])).values(status=code))
    return len(rows)


def bench_out(rt, args) -> dict[str, object]:
    from flows.pipeline import status_returns
    from flows.pipeline.cdar_out import CdarOut
    from flows.returns import cdar as cdarflow
    from flows.store.cdar import Outcome
    from validators import cdar as cdar_check

    timings = {"write": 0.0, "check": 0.0}
    runner = cdar_check.saxon() if args.engine == "saxon" else None

    @dataclasses.dataclass
    class TimedCdarOut(CdarOut):
        """`CdarOut` whose write and check are timed apart (the same calls as `CdarOut.checked`; `--engine saxon`
        gives the check the oracle's runner)."""

        def checked(self, message, language):
            t0 = time.perf_counter()
            try:
                data = self.write(message, language)
            except cdarflow.CdarRefused as e:
                return b"", [f"writer: {e}"]
            t1 = time.perf_counter()
            problems = [f"{f.rule}: {f.message}" for f in cdar_check.check(data, runner=runner)]
            t2 = time.perf_counter()
            timings["write"] += t1 - t0
            timings["check"] += t2 - t1
            return data, problems

    per_message: list[float] = []

    class TimedReturns(status_returns.StatusReturns):
        def _emit(self, partner, entries, report):  # one message at most per call: its whole time
            before = report.returns
            t0 = time.perf_counter()
            done = super()._emit(partner, entries, report)
            if report.returns > before:
                per_message.append(time.perf_counter() - t0)
            return done

    base = rt.status_returns
    cdar = TimedCdarOut(base.cdar.platform_id, base.cdar.platform_name, base.cdar.partner_platform)
    emitter = TimedReturns(
        rt.store,
        rt.archive,
        rt.channels,
        vocabulary=base.vocabulary,
        language=base.language,
        payment_not_reported=base.payment_not_reported,
        max_entries=args.lines_per_message,
        cdar=cdar,
    )
    t0 = time.perf_counter()
    invoices = seed(rt, OUT_PARTNER, "OUT", math.ceil(args.changes / len(OUT_WALK)), args.lines_per_message, None)
    rows = history_changes(rt, invoices, args.changes, args.lines_per_message)
    print(f"out: seeded {len(invoices)} invoices and {rows} history changes in {time.perf_counter() - t0:.1f} s")
    with PeakSampler() as rss:
        t0 = time.perf_counter()
        report = emitter.emit_due()
        total = time.perf_counter() - t0
    counts = rt.store.cdar_outcome_counts(OUT_PARTNER)
    not_sent = counts.get(("out", str(Outcome.REFUSED_OUT)), 0)
    return {
        "messages": report.returns,
        "lines": report.entries,
        "skipped": report.skipped,
        "not_sent": not_sent,
        "seconds": total,
        "write_s": timings["write"],
        "check_s": timings["check"],
        "p50_ms": percentile(per_message, 0.50) * 1000,
        "p95_ms": percentile(per_message, 0.95) * 1000,
        "peak_rss_mb": rss.peak,
    }


# ---- in ----------------------------------------------------------------------------------------------------


def messages_in(invoices, changes: int, per_message: int) -> list[tuple[str, bytes]]:
    """The CDAR messages `pa-in` sends: per group of `per_message` invoices (one buyer), a 202 and a 203 message
    (phase 305, issuer the platform), then a 204 and a 205 message (phase 23, issuer the buyer); `changes` lines."""
    from flows.domain.cdar import Message, Party, Role, Scheme, StatusLine
    from flows.domain.model import utcnow
    from flows.returns import cdar as cdarflow

    sender = Party(Role.PLATFORM, IN_PLATFORM, Scheme.PLATFORM, "PA acheteur")
    relais = Party(Role.PLATFORM, "9998", Scheme.PLATFORM, "Relais")
    out: list[tuple[str, bytes]] = []
    left = changes
    at = utcnow()
    for g in range(0, len(invoices), per_message):
        group = invoices[g : g + per_message]
        buyer = Party(Role.BUYER, group[0].buyer_siret[:9], Scheme.SIREN)
        for status in IN_WALK:
            lines = tuple(
                StatusLine(inv.number, status, invoice_issue_date=ISSUED, seller_siren=SELLER_SIRET[:9], buyer=buyer)
                for inv in group[: max(0, left)]
            )
            if not lines:
                return out
            left -= len(lines)
            issuer = sender if status in ("202", "203") else buyer
            message_id = f"PAIN-{g // per_message:06d}-{status}"
            data = cdarflow.write(Message(message_id, at, sender, issuer, relais, lines))
            out.append((f"{message_id}.xml", data))
    return out


def bench_in(rt, args) -> dict[str, object]:
    import sqlalchemy as sa

    from flows.domain.model import FlowStatus
    from flows.pipeline.process import process_flow
    from flows.store import tables as t
    from relais.runner import intake

    t0 = time.perf_counter()
    invoices = seed(
        rt, SELLER_PARTNER, "IN", math.ceil(args.changes / len(IN_WALK)), args.lines_per_message, IN_PARTNER
    )
    messages = messages_in(invoices, args.changes, args.lines_per_message)
    lines = sum(data.count(b"<rsm:AcknowledgementDocument>") for _, data in messages)
    print(
        f"in: seeded {len(invoices)} invoices issued to {IN_PARTNER}, wrote {len(messages)} CDAR messages "
        f"({lines} lines) in {time.perf_counter() - t0:.1f} s"
    )
    inbox = rt.settings.inbox(IN_PARTNER)
    old = time.time() - 60
    for name, data in messages:
        (inbox / name).write_bytes(data)
        os.utime(inbox / name, (old, old))
    per_flow: list[float] = []
    statuses: dict[str, int] = {}
    with PeakSampler() as rss:
        t0 = time.perf_counter()
        flows = []
        while True:  # the intake takes what the drop zone holds (archived first, one flow per file)
            taken = intake(rt)
            if not taken:
                break
            flows += taken
        intake_s = time.perf_counter() - t0
        flows.sort(key=lambda f: f.original_name)  # the order they were sent in (202 before 203...): by name
        t1 = time.perf_counter()
        for flow in flows:
            s = time.perf_counter()
            done = process_flow(rt.pipeline, flow.id)
            per_flow.append(time.perf_counter() - s)
            statuses[str(done.status)] = statuses.get(str(done.status), 0) + 1
        process_s = time.perf_counter() - t1
    c = t.cdar_lines.c
    m = t.cdar_messages.c
    with rt.store.engine.connect() as conn:
        applied = conn.execute(
            sa.select(sa.func.count())
            .select_from(t.cdar_lines.join(t.cdar_messages, m.id == c.message))
            .where(m.direction == "in", c.outcome == "applied")
        ).scalar_one()
    return {
        "messages": len(flows),
        "lines": lines,
        "applied": applied,
        "flow_statuses": statuses,
        "intake_s": intake_s,
        "seconds": process_s,
        "p50_ms": percentile(per_flow, 0.50) * 1000,
        "p95_ms": percentile(per_flow, 0.95) * 1000,
        "peak_rss_mb": rss.peak,
        "all_integrated": statuses == {str(FlowStatus.IN_INTEGRE): len(flows)},
    }


# ---- main --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--changes", type=int, default=100_000, help="status changes (lines) each way")
    ap.add_argument("--lines-per-message", type=int, default=100, help="status lines per CDAR message")
    ap.add_argument("--db", default="sqlite", help="sqlite (default), postgres, or a PostgreSQL URL")
    ap.add_argument("--engine", choices=["native", "saxon"], default="native", help="CDAR out's schematron engine")
    ap.add_argument("--part", choices=["both", "out", "in"], default="both")
    ap.add_argument("--workdir", type=Path, help="keep the data here (default: a temporary folder)")
    args = ap.parse_args(argv)
    if args.changes < 1 or args.lines_per_message < 1:
        ap.error("--changes and --lines-per-message must be positive")

    import sqlalchemy as sa

    from relais import log
    from relais.compose import Runtime
    from relais.settings import Settings

    log.configure("WARNING")
    tmp = tempfile.TemporaryDirectory(prefix="relais-cdar-")
    work = args.workdir or Path(tmp.name)
    home = work / "home"
    schema = None
    if args.db == "sqlite":
        url, db = f"sqlite:///{home / 'relais.db'}", "sqlite"
    else:
        url = PG_URL if args.db == "postgres" else args.db
        db = "postgresql"
        schema = f"relais_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
    settings = Settings.from_env(home, stable_seconds=0.0, database_url=url, database_schema=schema)
    print(
        f"relais CDAR benchmark: {args.changes} status changes each way, {args.lines_per_message} lines per message, "
        f"{db}, engine {args.engine}; {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}",
        flush=True,
    )
    rt = Runtime.open(settings)
    result: dict[str, object] = {"changes": args.changes, "lines_per_message": args.lines_per_message, "db": db}
    try:
        partner_file(settings, OUT_PARTNER, OUT_PLATFORM)
        partner_file(settings, IN_PARTNER, IN_PLATFORM)
        rt.__dict__.pop("partners", None)
        out = bench_out(rt, args) if args.part in ("both", "out") else None
        inn = bench_in(rt, args) if args.part in ("both", "in") else None
        header = (
            f"{'':<5} {'messages':>9} {'lines':>8} {'seconds':>8} {'messages/s':>11} {'lines/s':>8} "
            f"{'p50 ms':>8} {'p95 ms':>8} {'peak RSS MB':>12}"
        )
        print("\n" + header + "\n" + "-" * len(header))
        for name, r in (("out", out), ("in", inn)):
            if r is None:
                continue
            seconds = float(r["seconds"])  # type: ignore[arg-type]
            lines = r["lines"] if name == "out" else r["applied"]
            rate_m = int(r["messages"]) / seconds if seconds else float("inf")  # type: ignore[call-overload]
            rate_l = int(lines) / seconds if seconds else float("inf")  # type: ignore[call-overload]
            r.update(messages_per_s=rate_m, lines_per_s=rate_l)
            print(
                f"{name:<5} {r['messages']:>9} {lines:>8} {seconds:>8.1f} {rate_m:>11.1f} {rate_l:>8.0f} "
                f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['peak_rss_mb']:>12.0f}"
            )
        if out is not None:
            rest = float(out["seconds"]) - float(out["write_s"]) - float(out["check_s"])  # type: ignore[arg-type]
            print(
                f"out: write {out['write_s']:.1f} s, check ({args.engine}) {out['check_s']:.1f} s, "
                f"archive + queue + record {rest:.1f} s; {out['not_sent']} not sent, {out['skipped']} skipped"
            )
        if inn is not None:
            print(
                f"in: intake {inn['intake_s']:.1f} s (archived, recorded as flows; not in the rate above); "
                f"{inn['applied']} of {inn['lines']} lines applied; flows {inn['flow_statuses']}"
            )
        if out is not None:
            result["out"] = _rounded(out)
        if inn is not None:
            result["in"] = _rounded(inn)
        print(json.dumps(result))
        ok = (out is None or (out["not_sent"] == 0 and out["lines"] == args.changes)) and (
            inn is None or (inn["all_integrated"] and inn["applied"] == args.changes)
        )
        return 0 if ok else 1
    finally:
        rt.close()
        if schema is not None:
            admin = sa.create_engine(url)
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def _rounded(r: dict[str, object] | None) -> dict[str, object] | None:
    if r is None:
        return None
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()}


if __name__ == "__main__":
    sys.exit(main())
