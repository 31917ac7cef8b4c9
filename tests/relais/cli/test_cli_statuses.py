"""`relais statuses`: the CDAR lifecycle messages sent and received, as the terminal shows them (docs/reform.md,
"Seeing the messages"): the list (who, which direction, when, the outcome, the lines; filters; pages; the
not_sent incidents), one message with its lines and their French labels, the message's bytes as archived, and
the CPP status return flows with ``--vocabulary cpp``.

The messages are real CDAR D22B messages (tests/support/cdar_samples.py, checked against the official XSD and
schematron), archived and recorded in the home's store on SQLite and PostgreSQL; the CLI runs in process
(click's CliRunner) on that home.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result

from flows.domain import log
from relais.cli import main
from relais.compose import Runtime
from relais.settings import Settings
from tests.support import cdar_samples as cdar_messages
from tests.support.cdar_samples import Seeded


@pytest.fixture()
def home(store_url, tmp_path: Path) -> Iterator[tuple[dict[str, str | None], Seeded, Runtime]]:
    saved, configured, was = structlog.get_config(), log._configured, structlog.is_configured()
    url, schema = store_url
    root = tmp_path / "home"
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("RELAIS_")}
    env.update(RELAIS_HOME=str(root), RELAIS_DATABASE_URL=url, RELAIS_DATABASE_SCHEMA=schema)
    rt = Runtime.open(Settings.from_env(root, database_url=url, database_schema=schema, workers=0))
    try:
        yield env, cdar_messages.seed(rt), rt
    finally:
        rt.close()
        if was:
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()
        log._configured = configured


def _relais(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


def test_the_list_says_who_when_which_way_and_the_outcome(home) -> None:
    env, s, rt = home
    out = _relais(env, "statuses", "list")
    assert out.exit_code == 0, out.output
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    assert [(r[0], r[3], r[4], r[5], r[6]) for r in rows] == [
        (str(s.received.id), "reçu", "op-b", "PB-7781", "2"),
        (str(s.not_sent.id), "envoyé", "op-b", "RLS-CDAR-0002", "1"),
        (str(s.sent.id), "envoyé", "op-a", "RLS-CDAR-0001", "2"),
    ]
    assert out.stdout.splitlines()[1].endswith("appliqué en partie")
    assert out.stdout.splitlines()[2].endswith("non envoyé (incident)")
    assert out.stdout.splitlines()[3].endswith("en file d'envoi")
    # the incident is said on stderr, with the command that lists them
    assert "1 message(s) CDAR non envoyé(s)" in out.stderr and "--outcome not_sent" in out.stderr

    data = json.loads(_relais(env, "statuses", "list", "--json").stdout)
    assert [(m["direction"], m["partner"], m["outcome"], m["lines"]) for m in data["messages"]] == [
        ("in", "op-b", "partially_applied", 2),
        ("out", "op-b", "not_sent", 1),
        ("out", "op-a", "queued", 2),
    ]
    assert data["next_before"] is None and data["messages"][2]["flow"] == s.flow.id


def test_the_list_filters_and_pages(home) -> None:
    env, s, rt = home

    def ids(*args: str) -> list[int]:
        out = _relais(env, "statuses", "list", "--json", *args)
        assert out.exit_code == 0, out.output
        return [m["id"] for m in json.loads(out.stdout)["messages"]]

    assert ids("--partner", "op-b") == [s.received.id, s.not_sent.id]
    assert ids("--direction", "out") == [s.not_sent.id, s.sent.id]
    assert ids("--direction", "in", "--partner", "op-a") == []
    assert ids("--flow", s.flow.id) == [s.sent.id]
    assert ids("--invoice", s.invoices[1].id) == [s.sent.id]
    assert ids("--invoice", s.invoices[0].id) == [s.received.id, s.not_sent.id, s.sent.id]
    assert ids("--outcome", "not_sent") == [s.not_sent.id]
    first = json.loads(_relais(env, "statuses", "list", "--json", "--limit", "2").stdout)
    assert [m["id"] for m in first["messages"]] == [s.received.id, s.not_sent.id]
    assert first["next_before"] == s.not_sent.id
    assert ids("--limit", "2", "--before", str(first["next_before"])) == [s.sent.id]
    text = _relais(env, "statuses", "list", "--limit", "2").stdout
    assert f"suite : relais statuses list --before {s.not_sent.id} --limit 2" in text
    bad = _relais(env, "statuses", "list", "--direction", "sideways")
    assert bad.exit_code == 2 and "valeurs possibles : in (reçus), out (envoyés)" in bad.output
    assert "aucun message CDAR" in _relais(env, "statuses", "list", "--partner", "nobody").stdout


def test_show_gives_each_line_with_its_french_label_reason_and_rule(home) -> None:
    env, s, rt = home
    out = _relais(env, "statuses", "show", str(s.sent.id))
    assert out.exit_code == 0, out.output
    assert "message CDAR" in out.stdout and "RLS-CDAR-0001  envoyé (à op-a)" in out.stdout
    assert "résultat : en file d'envoi (queued)" in out.stdout
    assert f"1. facture INV-000001 ({s.invoices[0].id})  200 Déposée  écrite" in out.stdout
    assert f"2. facture INV-000002 ({s.invoices[1].id})  213 Rejetée  motif DOUBLON  écrite" in out.stdout
    received = _relais(env, "statuses", "show", str(s.received.id)).stdout
    assert "PB-7781  reçu (de op-b)" in received
    assert "2. facture INV-999999 (inconnue)  202 Reçue  refusée  règle RLS-C02" in received
    incident = _relais(env, "statuses", "show", str(s.not_sent.id)).stdout
    assert "non envoyé (incident) (not_sent)" in incident and "détail : BR-FR-CDV-14" in incident

    data = json.loads(_relais(env, "statuses", "show", str(s.received.id), "--json").stdout)
    assert data["outcome"] == "partially_applied" and data["sha256"] == s.received.sha256
    assert [
        (x["status"], x["status_label"], x["status_label_en"], x["outcome"], x["rule"]) for x in data["statuses"]
    ] == [
        ("202", "Reçue", "Received", "applied", None),
        ("202", "Reçue", "Received", "refused", "RLS-C02"),
    ]


def test_an_unknown_message_is_exit_1_with_a_clear_message(home) -> None:
    env, _, _ = home
    for command in ("show", "download"):
        out = _relais(env, "statuses", command, "999")
        assert out.exit_code == 1
        assert "aucun message CDAR d'identifiant 999 (no CDAR message 999)" in out.stderr
    assert _relais(env, "statuses", "show", "abc").exit_code == 2  # not a number: a usage error


def test_download_gives_the_archived_bytes_verified(home, tmp_path: Path) -> None:
    env, s, rt = home
    out = _relais(env, "statuses", "download", str(s.sent.id))
    assert out.exit_code == 0, out.output
    assert out.stdout_bytes == s.data[s.sent.id]
    assert hashlib.sha256(out.stdout_bytes).hexdigest() == s.sent.sha256
    target = tmp_path / "m.xml"
    saved = _relais(env, "statuses", "download", str(s.received.id), "-o", str(target))
    assert saved.exit_code == 0, saved.output
    assert target.read_bytes() == s.data[s.received.id]
    assert f"SHA-256 {s.received.sha256} vérifié" in saved.stderr
    # bytes that no longer match their SHA-256 are never given out
    victim = next(p for p in rt.settings.archive_dir.rglob(s.sent.sha256) if p.is_file())
    victim.chmod(0o644)
    victim.write_bytes(b"<tampered/>")
    bad = _relais(env, "statuses", "download", str(s.sent.id))
    assert bad.exit_code == 1 and "altéré" in bad.stderr and bad.stdout_bytes == b""


def test_the_cpp_status_return_flows_of_a_partner(home) -> None:
    env, s, rt = home
    out = _relais(env, "statuses", "list", "--vocabulary", "cpp")
    assert out.exit_code == 2 and "--vocabulary cpp va avec --partner" in out.stderr
    assert (
        "aucun flux retour CPP envoyé à op-a"
        in _relais(env, "statuses", "list", "--vocabulary", "cpp", "--partner", "op-a").stdout
    )
    # two status return flows to op-a: one in the CPP vocabulary, one that is the CDAR message RLS-CDAR-0001
    cpp = rt.archive.put_bytes(b"<CPPStatut/>").sha256
    assert rt.store.queue_status_return("SR-CPP-1", "op-a", 1, 3, 3, cpp, None)
    assert rt.store.queue_status_return(s.sent.return_id or "", "op-a", 4, 5, 2, s.sent.sha256, None)
    listed = _relais(env, "statuses", "list", "--vocabulary", "cpp", "--partner", "op-a")
    assert listed.exit_code == 0, listed.output
    assert "SR-CPP-1" in listed.stdout and "1..3" in listed.stdout and "CR-0001" not in listed.stdout
    data = json.loads(_relais(env, "statuses", "list", "--vocabulary", "cpp", "--partner", "op-a", "--json").stdout)
    assert [(r["id"], r["vocabulary"], r["entries"], r["sha256"]) for r in data["status_returns"]] == [
        ("SR-CPP-1", "cpp", 3, cpp)
    ]
