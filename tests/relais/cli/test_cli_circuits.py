"""The commands of the billing circuits: `relais actors`, `relais invoices validator`, tokens for registered
actors, the deadlines in `relais run` and their settings."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from flows.domain.circuits import Deadlines
from flows.domain.frameworks import Framework
from flows.domain.lifecycle import Actor
from flows.domain.lifecycle import InvoiceStatus as I
from flows.domain.model import Channel, Flow, FlowStatus, Invoice, Syntax, invoice_id, utcnow
from relais import runner
from relais.cli import main
from relais.run_loop import pass_summary
from relais.runner import GroupReport
from relais.settings import Settings

TITULAIRE, MOE, OTHER, BAD = "73282932000074", "35600000000048", "44306184100047", "73282932000075"


def _cli(home, *args):
    return CliRunner().invoke(main, ["--home", str(home), *map(str, args)])


def _piece(store, status: I, holder: str, **facts) -> Invoice:
    flow = store.create_flow(
        Flow(id="", partner="op-a", channel=Channel.FOLDER, original_name="lot.zip", size=10, sha256="cd" * 32)
    )
    inv = Invoice(
        id=invoice_id(flow.id, 1),
        flow_id=flow.id,
        position=1,
        entry_name="e1.xml",
        syntax=Syntax.CII,
        number="ST-1",
        buyer_siret="11000201100044",
        supplier_id="12345678200010",
        framework=Framework.A9,
        status=status,
        holder=holder,
        validator_1=holder,
        **facts,
    )
    store.save_invoices([inv], [])
    flow.status = FlowStatus.IN_INTEGRE  # closed: `relais run` takes no flow of these
    store.update_flow(flow)
    return inv


def test_actors_are_added_imported_and_listed(tmp_path):
    home = tmp_path / "home"
    assert "aucun acteur" in _cli(home, "actors", "list").output
    added = _cli(home, "actors", "add", "--siret", TITULAIRE, "--name", "Entreprise Générale", "--role", "Titulaire")
    assert added.exit_code == 0, added.output
    assert "acteur 73282932000074 (titulaire, Entreprise Générale) enregistré" in added.output
    for bad, why in (
        (["--siret", BAD, "--name", "X", "--role", "moe"], "clé de contrôle"),
        (["--siret", "123", "--name", "X", "--role", "moe"], "14 chiffres"),
        (["--siret", MOE, "--name", "X", "--role", "architecte"], "valeurs possibles"),
    ):
        refused = _cli(home, "actors", "add", *bad)
        assert refused.exit_code == 2 and why in refused.output, refused.output
    second = _cli(home, "actors", "add", "--siret", MOE, "--name", "Cabinet MOE", "--role", "moe")
    assert second.exit_code == 0
    listed = json.loads(_cli(home, "actors", "list", "--json").output)
    assert [(a["siret"], a["role"]) for a in listed["actors"]] == [(MOE, "moe"), (TITULAIRE, "titulaire")]

    bad_file = tmp_path / "acteurs.csv"
    bad_file.write_text(f"siret;name;role\n{OTHER};Maître d'ouvrage;moa\n{BAD};Cotraitant;mandataire\n")
    refused = _cli(home, "actors", "import", bad_file)
    assert refused.exit_code == 2 and "ligne 3" in refused.output and "rien n'est importé" in refused.output
    assert json.loads(_cli(home, "actors", "list", "--json").output)["actors"] == listed["actors"]  # unchanged

    good = tmp_path / "acteurs-ok.csv"
    good.write_text(f"\ufeffsiret;name;role\n# la MOA\n{OTHER};Maître d'ouvrage;MOA\n\n{MOE};Cabinet;moe\n")
    imported = _cli(home, "actors", "import", good)
    assert imported.exit_code == 0 and "2 acteur(s) importé(s)" in imported.output, imported.output
    # The file replaced the list: the titulaire it does not hold is said to be dropped, the MOE is not.
    assert "1 acteur(s) de la version précédente ne sont plus enregistré(s)" in imported.output
    assert f"{TITULAIRE}  titulaire  Entreprise Générale" in imported.output and f"{MOE}  moe" not in imported.output
    after = json.loads(_cli(home, "actors", "list", "--json").output)
    assert [(a["siret"], a["role"]) for a in after["actors"]] == [(MOE, "moe"), (OTHER, "moa")]  # a new list
    assert after["version"] != listed["version"]
    assert "Maître d'ouvrage" in _cli(home, "actors", "list").output


def test_a_registered_actor_gets_an_api_token(tmp_path):
    home = tmp_path / "home"
    refused = _cli(home, "api", "token", "create", "--siret", TITULAIRE)
    assert refused.exit_code == 2 and "ni dans l'annuaire actuel ni un acteur enregistré" in refused.output
    _cli(home, "actors", "add", "--siret", TITULAIRE, "--name", "Entreprise Générale", "--role", "titulaire")
    made = _cli(home, "api", "token", "create", "--siret", TITULAIRE)
    assert made.exit_code == 0 and made.stdout.strip().startswith("rls_"), made.output
    with_service = _cli(home, "api", "token", "create", "--siret", TITULAIRE, "--service", "DSI")
    assert with_service.exit_code == 2 and "sans services" in with_service.output


def test_ops_correct_a_validator_from_the_command_line(rt):
    home = rt.settings.home
    inv = _piece(rt.store, I.A_VALIDER_1, TITULAIRE)
    done = _cli(home, "invoices", "validator", inv.id, "--siret", OTHER, "--reason", "le titulaire a changé")
    assert done.exit_code == 0, done.output
    assert f"{inv.id} : A_VALIDER_1, valideur {OTHER} (était {TITULAIRE})" in done.output
    assert "échéance" in done.output
    now = rt.store.get_invoice(inv.id)
    assert (now.holder, now.validator_1) == (OTHER, OTHER)
    last = rt.store.invoice_history(inv.id)[-1]
    assert (last.actor, last.status, last.reason) == (Actor.OPS, I.A_VALIDER_1, "le titulaire a changé")
    [row] = [r for r in rt.store.audit_rows(target=inv.id)]
    assert row.action == "invoice.validator" and row.principal.startswith("cli") and OTHER in row.detail

    assert _cli(home, "invoices", "validator", inv.id, "--siret", BAD, "--reason", "x").exit_code == 2
    assert _cli(home, "invoices", "validator", "CPP-nope", "--siret", OTHER, "--reason", "x").exit_code == 1
    later = _piece(rt.store, I.MISE_A_DISPOSITION, "11000201100044")
    wrong = _cli(home, "invoices", "validator", later.id, "--siret", OTHER, "--reason", "x")
    assert wrong.exit_code == 1 and "rien n'est changé" in wrong.output
    shown = _cli(home, "invoices", inv.id)  # `relais invoices ID` still shows one invoice
    assert shown.exit_code == 0 and "le titulaire a changé" in shown.output


def test_relais_run_applies_the_deadlines_once_per_pass(rt, monkeypatch):
    # The status return flow of circuit statuses (20..55) is the return flows' work (relais-cppstatut.xsd):
    # left out of this pass.
    monkeypatch.setattr(runner, "emit_statuses", lambda rt: GroupReport())
    late = _piece(rt.store, I.A_VALIDER_1, TITULAIRE, due_at=utcnow() - dt.timedelta(minutes=1))
    waiting = _piece(rt.store, I.A_VALIDER_1, TITULAIRE, due_at=utcnow() + dt.timedelta(days=3))
    report = runner.run_pass(rt)
    assert report.deadlines == 1 and report.summary()["deadlines"] == 1
    assert rt.store.get_invoice(late.id).status is I.MISE_A_DISPOSITION
    assert rt.store.get_invoice(waiting.id).status is I.A_VALIDER_1
    assert runner.run_pass(rt).deadlines == 0
    later = utcnow() + dt.timedelta(days=4)  # the clock is an argument
    assert runner.apply_deadlines(rt, later).deadlines == 1
    assert rt.store.get_invoice(waiting.id).status is I.MISE_A_DISPOSITION
    said = pass_summary(GroupReport(deadlines=2), watch=True)
    assert said is not None and "2 pièce(s) avancée(s) à l'échéance de leur délai" in said


def test_deadline_settings(monkeypatch, tmp_path):
    assert Settings.from_env(tmp_path).pipeline_config().deadlines == Deadlines(15, 7)
    monkeypatch.setenv("RELAIS_CIRCUITS_VALIDATOR_DAYS", "20")
    monkeypatch.setenv("RELAIS_CIRCUITS_MOE_DAYS", "10")
    assert Settings.from_env(tmp_path).pipeline_config().deadlines == Deadlines(validator_days=20, moe_days=10)
    for bad in ("0", "-3", "abc", "400"):
        monkeypatch.setenv("RELAIS_CIRCUITS_MOE_DAYS", bad)
        with pytest.raises(ValueError, match="RELAIS_CIRCUITS_MOE_DAYS"):
            Settings.from_env(tmp_path)
