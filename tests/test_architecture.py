"""The shape of the code: layers, the composition root, channels, the shared intake, the typed outbox.

The import contracts themselves are checked by `lint-imports` (scripts/test.sh, pyproject.toml);
these tests check what a contract cannot: that every module is in a layer, that the parts are built
in one place, and how the interfaces behave.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.partners import As2Config, Partner, SftpPickup
from flows.domain.model import Channel
from flows.pipeline.channels import Address, Channels, OutboxKind
from flows.pipeline.intake import Arrival, Intake
from flows.store import Store
from relais.compose import channels

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _contract(contract_id: str) -> dict:
    [c] = [c for c in PYPROJECT["tool"]["importlinter"]["contracts"] if c["id"] == contract_id]
    return c


def _layer_modules() -> set[str]:
    return {m.strip() for layer in _contract("layers")["layers"] for m in re.split(r"[:|]", layer)}


def test_flows_is_made_of_layer_packages_each_in_a_layer():
    """flows/ holds packages only, and each is named by the layers contract: a new module takes the layer
    of the package it is put in, so the contract names packages, never modules."""
    named = _layer_modules()
    loose = sorted(p.name for p in (ROOT / "flows").glob("*.py") if p.stem != "__init__")
    assert loose == [], "put these modules in one of flows/'s layer packages"
    packages = {f"flows.{p.name}" for p in (ROOT / "flows").iterdir() if (p / "__init__.py").exists()}
    assert packages - named == set(), "add these packages to a layer in pyproject.toml [tool.importlinter]"
    for package in ("dags", "relais", "connectors", "validators", "archive"):
        assert package in named
    assert len(_contract("layers")["layers"]) <= 10


def test_the_import_contracts_hold():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports_command; lint_imports_command()",
            "--no-cache",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "3 kept, 0 broken" in result.stdout


@pytest.mark.parametrize("construction", ["LocalArchive(", "ValidationPool(", "Store.open(", "Channels("])
def test_the_parts_are_built_only_by_the_composition_root(construction):
    """flows/, validators/, archive/ and connectors/ never build a store, an archive, a pool or the
    channel registry: relais/compose.py does, and hands them down."""
    found = [
        str(p.relative_to(ROOT))
        for folder in ("flows", "validators", "archive", "connectors")
        for p in (ROOT / folder).rglob("*.py")
        if any(
            construction in line and not line.lstrip().startswith((">>>", "...", "#", "class "))
            for line in p.read_text().splitlines()
        )
    ]
    allowed = {"flows/store/core.py"} if construction == "Store.open(" else set()  # the classmethod itself
    assert set(found) <= allowed, found


# ---- channels --------------------------------------------------------------------------


def _partners(tmp_path: Path) -> dict[str, Partner]:
    as2 = As2Config(
        as2_id="B",
        our_as2_id="RELAIS",
        partner_cert=tmp_path / "b.pem",
        our_cert=tmp_path / "o.pem",
        our_key=tmp_path / "o.key",
        url="http://b.example/as2",
    )
    return {
        "by-as2": Partner(id="by-as2", name="A", as2=as2),
        "by-sftp": Partner(id="by-sftp", name="S", sftp=SftpPickup(host="h", user="u", return_dir="/inbound/")),
        "by-both": Partner(id="by-both", name="B", as2=as2, sftp=SftpPickup(host="h", user="u", return_dir="in")),
        "plain": Partner(id="plain", name="P"),
    }


def test_return_flows_go_by_as2_then_sftp_then_the_local_folder(settings, tmp_path):
    registry = channels(settings, lambda: _partners(tmp_path))
    # The flow service's webhook channel comes last: it never takes a return flow (connectors/webhook).
    assert isinstance(registry, Channels) and list(registry) == ["as2", "sftp", "folder", "webhook"]
    assert registry["webhook"].return_address("plain", "CR.xml") is None
    assert registry.return_address("by-as2", "CR.xml") == Address("as2", "by-as2", "CR.xml")
    assert registry.return_address("by-both", "CR.xml") == Address("as2", "by-both", "CR.xml")
    assert registry.return_address("by-sftp", "CR.xml") == Address("sftp", "by-sftp", "inbound/CR.xml")
    assert registry.return_address("plain", "CR.xml") == Address(
        "folder", "plain", str(settings.outbox_dir("plain") / "CR.xml")
    )
    assert registry["as2"].ordered and registry["sftp"].ordered and not registry["folder"].ordered


def test_a_closed_flow_queues_its_return_flow_with_a_typed_address(rt, tmp_path):
    from tests.support.helpers import drop, run

    rt.partners = _partners(tmp_path) | {"op-a": Partner(id="op-a", name="A")}
    drop(rt, "op-a", "empty.xml", b"")
    [flow] = run(rt)
    [row] = rt.store.outbox_for_flow(flow.id)
    assert row.kind is OutboxKind.RETURN
    assert (row.channel, row.partner) == ("folder", "op-a")
    assert Path(row.destination).parent == rt.settings.outbox_dir("op-a")
    assert row.status == "sent" and Path(row.destination).exists()


# ---- the shared intake ------------------------------------------------------------------


def test_one_idempotence_rule_for_every_channel(tmp_path):
    from archive import LocalArchive

    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}")
    intake = Intake(store, LocalArchive(tmp_path / "archive"), tmp_path / "staging")
    written = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    for channel in (Channel.FOLDER, Channel.SFTP, Channel.AS2):
        first = intake.ingest(Arrival("p", channel, f"{channel}.xml", written), b"<a/>")
        assert first.created
        again = intake.ingest(Arrival("p", channel, f"{channel}.xml", written), b"<a/>")  # left by a crash
        assert not again.created and again.flow.id == first.flow.id
        assert intake.known(Arrival("p", channel, f"{channel}.xml", written), 4, first.flow.sha256) == first.flow
        later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
        resend = intake.ingest(Arrival("p", channel, f"{channel}.xml", later), b"<a/>")  # written again
        assert resend.created and resend.flow.id != first.flow.id
        assert resend.flow.channel is channel
    assert intake.archive.exists(first.flow.sha256)  # archive first: the bytes are there
    store.close()


# ---- migration 0007: outbox targets become typed addresses -------------------------------


def test_migration_0007_turns_old_targets_into_addresses(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store.connect(url)
    store.migrate("0006")
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with store.engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO flows (id, partner, channel, original_name, size, sha256, status, received_at,"
                " updated_at, invoice_count, rejected_count, incidents) VALUES"
                " ('CPP1', 'op-f', 'folder', 'a.zip', 1, 'x', 'IN_INTEGRE', :t, :t, 2, 0, 0)"
            ),
            {"t": now},
        )
        rows = [
            ("return:CPP1:a", "return", "CPP1", None, "/home/out/op-f/CR_CPP1.xml"),
            ("return:CPP1:b", "return", "CPP1", None, "sftp://op-s/inbound/CR_CPP1.xml"),
            ("return:CPP1:c", "return", "CPP1", None, "as2://op-b/CR_CPP1.xml"),
            ("delivery:CPP1-00002", "delivery", "CPP1", "CPP1-00002", "/home/delivery/1100/_/CPP1-00002.xml"),
            ("as2-mdn:op-b:7:z", "as2-mdn", None, None, "http://b.example/mdn"),
        ]
        for key, kind, flow_id, invoice_id, target in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (key, kind, flow_id, invoice_id, target, status, attempts, created_at)"
                    " VALUES (:k, :kind, :f, :i, :t, 'pending', 0, :c)"
                ),
                {"k": key, "kind": kind, "f": flow_id, "i": invoice_id, "t": target, "c": now},
            )
    store.migrate("head")
    with store.engine.connect() as conn:
        got = {
            r.key: (r.channel, r.partner, r.destination, r.position)
            for r in conn.execute(sa.text("SELECT key, channel, partner, destination, position FROM outbox"))
        }
    assert got == {
        "return:CPP1:a": ("folder", "op-f", "/home/out/op-f/CR_CPP1.xml", None),
        "return:CPP1:b": ("sftp", "op-s", "inbound/CR_CPP1.xml", None),
        "return:CPP1:c": ("as2", "op-b", "CR_CPP1.xml", None),
        "delivery:CPP1-00002": ("folder", None, "/home/delivery/1100/_/CPP1-00002.xml", 2),
        "as2-mdn:op-b:7:z": ("as2", "op-b", "http://b.example/mdn", None),
    }
    assert [i.kind for i in store.pending_outbox()] == [
        OutboxKind.RETURN,
        OutboxKind.RETURN,
        OutboxKind.RETURN,
        OutboxKind.DELIVERY,
        OutboxKind.MDN,
    ]
    from alembic import command

    from flows.store.core import _alembic_config

    cfg = _alembic_config()
    with store.engine.begin() as conn:  # and back: the old targets again
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    with store.engine.connect() as conn:
        targets = {r.key: r.target for r in conn.execute(sa.text("SELECT key, target FROM outbox"))}
    assert targets == {key: target for key, _, _, _, target in rows}
    store.close()
