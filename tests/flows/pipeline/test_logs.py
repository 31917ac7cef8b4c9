"""Logs are JSON lines carrying the flow id (and the invoice id where there is one)."""

from __future__ import annotations

import io
import json

from relais import generate as gen
from relais import log
from tests.support.helpers import drop, run


def test_pipeline_logs_are_json_with_flow_and_invoice_ids(rt, directory_file):
    _, recipients = directory_file
    name, data = gen.document(
        "ubl", next(s for s in gen.plan(40, 1, recipients, misrouted_ratio=1.0, seed=4) if s.defect)
    )
    drop(rt, "op-a", name, data)
    buf = io.StringIO()
    log.configure("INFO", stream=buf)
    try:
        [flow] = run(rt)
    finally:
        log.configure("WARNING")
    events = [json.loads(line) for line in buf.getvalue().splitlines()]
    by_name = {e["event"]: e for e in events}
    assert {"flow.received", "invoice.rejected", "flow.closed", "return_flow.sent"} <= set(by_name)
    assert all(e["flow_id"] == flow.id for e in events if e["event"].startswith(("flow.", "invoice.", "return_")))
    assert by_name["invoice.rejected"]["invoice_id"] == f"{flow.id}-00001"
    assert by_name["flow.closed"]["status"] == "IN_REJETE"
    assert all("timestamp" in e and "level" in e for e in events)
