"""Reprocessing a closed flow with rejections (`relais flows reprocess`, the web application's action):
the directory lacked some recipients, so their invoices were rejected (RLS-R03); ops import the fixed
directory and reprocess the flow. With real `relais` processes:

- the flow becomes IN_INTEGRE; the invoices accepted the first time are kept as they were (delivered
  once: the same files, untouched; their history kept); the others are delivered once each;
- the new integration report says it replaces the first (``Retraitement``: its number and the name
  of the report replaced), and is valid against Relais's XSD;
- the status changes of the re-judged invoices are reported once in status return flows;
- a flow with nothing to reprocess (IN_INTEGRE) is refused, exit 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from lxml import etree

from flows.returns import report as returnflow
from flows.store import Store
from relais import generate as gen

ROOT = Path(__file__).resolve().parents[3]


def _relais(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
    env.update(RELAIS_HOME=str(home), RELAIS_STABLE_SECONDS="0", RELAIS_WORKERS="0", RELAIS_LOG_LEVEL="WARNING")
    return subprocess.run(
        [sys.executable, "-m", "relais.cli", *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_a_flow_rejected_for_unknown_recipients_is_integrated_after_the_directory_is_fixed(tmp_path):
    home = tmp_path / "home"
    recipients = gen.sample_directory()
    specs = list(gen.plan(10, 2, recipients, seed=5))
    used = {s.buyer_siret for s in specs}
    missing = sorted(used)[:2]  # two of the recipients invoiced are not in the first directory
    partial = [r for r in recipients if r.siret not in missing]
    (tmp_path / "partial.json").write_text(json.dumps(gen.directory_document(partial, "v1")))
    (tmp_path / "full.json").write_text(json.dumps(gen.directory_document(recipients, "v2")))
    assert _relais(home, "directory", "import", str(tmp_path / "partial.json")).returncode == 0
    [batch] = gen.write_batch(tmp_path / "gen", "ubl", 10, 2, batch="zip", recipients=recipients, seed=5)
    inbox = home / "dropzones" / "op-a" / "in"
    inbox.mkdir(parents=True)
    shutil.move(batch, inbox / batch.name)
    old = time.time() - 60
    os.utime(inbox / batch.name, (old, old))
    assert _relais(home, "run", "-q").returncode == 0

    store = Store.open(f"sqlite:///{home / 'relais.db'}", migrate=False)
    [flow] = store.list_flows()
    assert str(flow.status) == "IN_INTEGRE_PARTIEL", flow.status
    first = {i.id: i for i in store.iter_invoices(flow.id)}
    rejected = {i.id for i in first.values() if i.status.is_rejected}
    assert rejected and all(any(e.rule == "RLS-R03" for e in first[i].errors) for i in rejected), [
        (i, [e.rule + " " + e.message for e in first[i].errors]) for i in rejected
    ]
    delivered = {p: p.stat().st_mtime_ns for p in (home / "delivery").rglob("*") if p.is_file()}
    assert len(delivered) == len(first) - len(rejected)
    kept_history = {i: [h.status.code for h in store.history_of_flow(flow.id)[i]] for i in first if i not in rejected}
    assert all(codes[-1] == "03" for codes in kept_history.values())  # delivered: MISE_A_DISPOSITION

    assert _relais(home, "directory", "import", str(tmp_path / "full.json")).returncode == 0
    again = _relais(home, "flows", "reprocess", flow.id)
    assert again.returncode == 0, again.stdout + again.stderr

    flow = store.get_flow(flow.id)
    assert flow is not None and str(flow.status) == "IN_INTEGRE" and flow.reopened == 1
    assert flow.invoice_count == len(first) and flow.rejected_count == 0
    now = {i.id: i for i in store.iter_invoices(flow.id)}
    assert set(now) == set(first) and not any(i.status.is_rejected for i in now.values())
    # accepted the first time: kept as they were (same delivery file, untouched; history kept)
    files = {p: p.stat().st_mtime_ns for p in (home / "delivery").rglob("*") if p.is_file()}
    assert len(files) == len(first) and all(files[p] == t for p, t in delivered.items())
    history = store.history_of_flow(flow.id)
    assert {i: [h.status.code for h in history[i]] for i in kept_history} == kept_history
    rows = Counter(o.invoice_id for o in store.outbox_for_flow(flow.id) if o.kind == "delivery")
    assert set(rows) == set(now) and set(rows.values()) == {1}
    # the new report replaces the first, and says so
    out = home / "dropzones" / "op-a" / "out"
    reports = sorted(p.name for p in out.glob("CR_*.xml"))
    assert reports == [f"CR_{flow.id}_IN_INTEGRE.xml", f"CR_{flow.id}_IN_INTEGRE_PARTIEL.xml"]
    new = (out / f"CR_{flow.id}_IN_INTEGRE.xml").read_bytes()
    returnflow.validate(new)
    doc = etree.fromstring(new)
    assert doc.findtext(".//Retraitement/NumeroRetraitement") == "1"
    assert doc.findtext(".//Retraitement/CompteRenduRemplace") == f"CR_{flow.id}_IN_INTEGRE_PARTIEL.xml"
    assert etree.fromstring((out / reports[1]).read_bytes()).find(".//Retraitement") is None
    # the re-judged invoices' delivery (03) is reported once; the kept ones' not again
    _relais(home, "run", "-q")
    reported = Counter()
    for st in out.glob("ST*.xml"):
        for e in etree.parse(str(st)).iter("CPPFactureStatut"):
            reported[(e.findtext("IdFacture"), e.findtext("DonneesStatut/IdStatut"))] += 1
    assert {k for k, n in reported.items() if n > 1} == set()
    assert {i for i, code in reported if code == "03"} == set(now)

    refused = _relais(home, "flows", "reprocess", flow.id)
    assert refused.returncode == 2 and "IN_INTEGRE" in refused.stderr
    store.engine.dispose()


def test_a_report_of_a_flow_reprocessed_twice_never_overwrites_an_earlier_one(tmp_path):
    """Reopened with the same outcome (IN_INTEGRE_PARTIEL again, one recipient fixed of two), the new
    report takes the next free name (``_R1``): the earlier one, which the partner may not have collected
    yet, stays as it was, and the new one names it in ``CompteRenduRemplace``."""
    home = tmp_path / "home"
    recipients = gen.sample_directory()
    specs = list(gen.plan(10, 2, recipients, seed=5))
    missing = sorted({s.buyer_siret for s in specs})[:2]
    for tag, absent in (("v1", missing), ("v2", missing[:1]), ("v3", [])):
        kept = [r for r in recipients if r.siret not in absent]
        (tmp_path / f"{tag}.json").write_text(json.dumps(gen.directory_document(kept, tag)))
    assert _relais(home, "directory", "import", str(tmp_path / "v1.json")).returncode == 0
    [batch] = gen.write_batch(tmp_path / "gen", "ubl", 10, 2, batch="zip", recipients=recipients, seed=5)
    inbox = home / "dropzones" / "op-a" / "in"
    inbox.mkdir(parents=True)
    shutil.move(batch, inbox / batch.name)
    old = time.time() - 60
    os.utime(inbox / batch.name, (old, old))
    assert _relais(home, "run", "-q").returncode == 0
    store = Store.open(f"sqlite:///{home / 'relais.db'}", migrate=False)
    [flow] = store.list_flows()
    assert str(flow.status) == "IN_INTEGRE_PARTIEL", flow.status
    out = home / "dropzones" / "op-a" / "out"
    first_name = f"CR_{flow.id}_IN_INTEGRE_PARTIEL.xml"
    first = (out / first_name).read_bytes()

    assert _relais(home, "directory", "import", str(tmp_path / "v2.json")).returncode == 0
    assert _relais(home, "flows", "reprocess", flow.id).returncode == 0
    again = store.get_flow(flow.id)
    assert (
        again is not None and str(again.status) == "IN_INTEGRE_PARTIEL" and again.rejected_count < flow.rejected_count
    )
    second_name = f"CR_{flow.id}_IN_INTEGRE_PARTIEL_R1.xml"
    assert sorted(p.name for p in out.glob("CR_*.xml")) == [first_name, second_name]
    assert (out / first_name).read_bytes() == first  # untouched
    second = etree.fromstring((out / second_name).read_bytes())
    assert second.findtext(".//Retraitement/CompteRenduRemplace") == first_name

    assert _relais(home, "directory", "import", str(tmp_path / "v3.json")).returncode == 0
    assert _relais(home, "flows", "reprocess", flow.id).returncode == 0
    third = etree.fromstring((out / f"CR_{flow.id}_IN_INTEGRE.xml").read_bytes())
    assert third.findtext(".//Retraitement/CompteRenduRemplace") == second_name
    assert (out / first_name).read_bytes() == first
    store.close()
