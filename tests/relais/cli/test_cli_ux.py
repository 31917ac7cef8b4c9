"""The terminal, as an operator uses it (issue 20, section 4): invoice ids beside their numbers, an
invoice found by its number, refusals that list the valid values, a `relais run` that says what it did
and refuses to start without a recipient directory, return files readable by the partner's account.

One home per module, built through the CLI itself (click's CliRunner, in process, validation in process).
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner, Result

from flows.domain import log
from relais.cli import main


@pytest.fixture(scope="module")
def _quiet_structlog():
    """structlog left as it was found (the CLI configures it)."""
    saved, configured, was = structlog.get_config(), log._configured, structlog.is_configured()
    yield
    if was:
        structlog.configure(**saved)
    else:
        structlog.reset_defaults()
    log._configured = configured


def _env(**extra: str) -> dict[str, str | None]:
    """No RELAIS_* setting of the caller; validation in process; files taken at once."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("RELAIS_")}
    env.update(RELAIS_WORKERS="0", RELAIS_STABLE_SECONDS="0", **extra)
    return env


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"

    def __call__(self, *args: object, **env: str) -> Result:
        return CliRunner().invoke(main, ["--home", str(self.home), *map(str, args)], env=_env(**env))

    def drop(self, partner: str, seed: int, n: int = 3) -> Path:
        inbox = self.home / "dropzones" / partner / "in"
        result = self("generate", "-n", n, "-l", 2, "--seed", seed, "--out", inbox)
        assert result.exit_code == 0, result.output
        [path] = [p for p in inbox.iterdir() if f"-s{seed}." in p.name]
        old = time.time() - 60
        os.utime(path, (old, old))
        return path


@pytest.fixture(scope="module")
def home(tmp_path_factory, _quiet_structlog) -> Home:
    """A home with two flows of op-a and op-b whose invoices share their numbers (INV-000001...)."""
    h = Home(tmp_path_factory.mktemp("cli_ux"))
    first = h.drop("op-a", seed=1)
    refused = h("run")  # no directory yet: nothing is taken, nothing becomes an incident
    assert refused.exit_code == 2, refused.output
    assert "aucun annuaire des destinataires importé" in refused.stderr
    assert "relais directory import" in refused.stderr and "Traceback" not in refused.output
    assert first.exists() and json.loads(h("flows", "--json").stdout)["flows"] == []
    annuaire = h.root / "annuaire.json"
    assert h("generate", "-n", 0, "--out", h.root / "none", "--directory", annuaire).exit_code == 0
    assert h("directory", "import", annuaire).exit_code == 0
    ran = h("run")
    assert ran.exit_code == 0, ran.output
    assert not first.exists()
    h.drop("op-b", seed=2)
    assert h("run", "-q").exit_code == 0
    return h


def _flows(h: Home) -> list[dict]:
    return json.loads(h("flows", "--json").stdout)["flows"]


def test_flow_shows_each_invoice_id_beside_its_number(home: Home) -> None:
    flow = _flows(home)[-1]["id"]
    shown = home("flows", flow)
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.stdout.splitlines() if "INV-00000" in line and "acheteur" in line]
    assert len(lines) == 3
    for n, line in enumerate(lines, 1):
        assert line.split()[0] == f"{flow}-{n:05d}" and f"INV-{n:06d}" in line


def test_an_invoice_number_lists_the_invoices_carrying_it(home: Home) -> None:
    flows = {f["partner"]: f["id"] for f in _flows(home)}
    listed = home("invoices", "INV-000002")
    assert listed.exit_code == 0, listed.output
    assert "2 factures portent le numéro INV-000002" in listed.stdout
    for flow in flows.values():
        [line] = [x for x in listed.stdout.splitlines() if x.strip().startswith(f"{flow}-00002")]
        assert flow in line.split()[1] and "MISE_A_DISPOSITION" in line
    as_json = json.loads(home("invoices", "INV-000002", "--json").stdout)
    assert {i["id"] for i in as_json["invoices"]} == {f"{f}-00002" for f in flows.values()}


def test_no_match_is_exit_1_naming_what_was_searched(home: Home) -> None:
    flow = _flows(home)[0]["id"]
    assert json.loads(home("invoices", f"{flow}-00001", "--json").stdout)["number"] == "INV-000001"  # an id
    missing = home("invoices", "INV-999999")
    assert missing.exit_code == 1
    assert "aucune facture" in missing.stderr and "« INV-999999 »" in missing.stderr
    assert "relais flows" in missing.stderr  # how to find it


def test_a_number_carried_once_shows_its_invoice(home: Home) -> None:
    home.drop("op-c", seed=3, n=4)  # INV-000004 exists only in this flow
    assert home("run", "-q").exit_code == 0
    shown = home("invoices", "INV-000004")
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.startswith("1 facture porte le numéro INV-000004")
    assert "numéro INV-000004" in shown.stdout and "enregistrée 01 DEPOSEE" in shown.stdout


@pytest.mark.parametrize(
    "args,valid",
    [
        (["flows", "--status", "BOGUS"], ["IN_INTEGRE (intégré)", "IN_RECU", "IN_INCIDENTE"]),
        (["flows", "reprocess", "--status", "IN_INTEGRE"], ["IN_INCIDENTE", "IN_REJETE", "IN_INTEGRE_PARTIEL"]),
        (["generate", "--format", "xml", "--out", "x"], ["ubl", "cii", "facturx"]),
        (["generate", "--batch", "rar", "--out", "x"], ["none", "zip", "tar.gz"]),
        (["validate", "--engine", "fast", "x.xml"], ["native", "official"]),
        (["as2", "messages", "--direction", "up"], ["in", "out"]),
        (["users", "add", "bob", "--role", "admin"], ["ops", "partner", "viewer"]),
        (["--log-level", "LOUD", "flows"], ["DEBUG", "WARNING", "CRITICAL"]),
    ],
)
def test_an_invalid_option_value_lists_the_valid_ones(home: Home, args: list[str], valid: list[str]) -> None:
    result = home(*args)
    assert result.exit_code == 2, result.output
    assert "valeur invalide pour" in result.stderr and "valeurs possibles" in result.stderr, result.stderr
    assert all(v in result.stderr for v in valid), result.stderr
    assert "Traceback" not in result.output and "Invalid value" not in result.output


def test_a_lower_case_status_is_accepted(home: Home) -> None:
    result = home("flows", "--status", "in_integre", "--json")
    assert result.exit_code == 0 and {f["status"] for f in json.loads(result.stdout)["flows"]} == {"IN_INTEGRE"}


def test_run_says_what_it_did_when_it_only_sent_status_returns(home: Home) -> None:
    from flows.domain.history import Source
    from flows.domain.lifecycle import Actor, InvoiceStatus
    from flows.pipeline import status_changes as statuses
    from flows.store import Store

    nothing = home("run")
    assert nothing.exit_code == 0 and "rien à traiter" in nothing.stdout, nothing.output
    flow = _flows(home)[-1]["id"]
    store = Store.open(f"sqlite:///{home.home / 'relais.db'}")
    try:
        statuses.change(store, f"{flow}-00001", InvoiceStatus.SERVICE_FAIT, actor=Actor.RECIPIENT, source=Source.API)
    finally:
        store.engine.dispose()
    sent = home("run")
    assert sent.exit_code == 0, sent.output
    assert "aucun nouveau flux" in sent.stdout and "1 flux retour de statut émis" in sent.stdout, sent.stdout
    assert home("run", "-q").stdout == ""  # quiet stays quiet


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_return_files_and_deliveries_are_readable_by_the_partner(home: Home) -> None:
    out = list((home.home / "dropzones" / "op-a" / "out").iterdir())
    delivered = [p for p in (home.home / "delivery").rglob("*.xml")]
    assert out and delivered
    assert {_mode(p) for p in out + delivered} == {0o644}


def test_the_return_file_mode_is_configurable(home: Home) -> None:
    home.drop("op-d", seed=4, n=1)
    assert home("run", "-q", RELAIS_RETURN_FILE_MODE="0640").exit_code == 0
    returned = list((home.home / "dropzones" / "op-d" / "out").iterdir())
    assert returned and {_mode(p) for p in returned} == {0o640}
    bad = home("flows", RELAIS_RETURN_FILE_MODE="rw-r--r--")
    assert bad.exit_code == 2 and "RELAIS_RETURN_FILE_MODE must be octal" in bad.stderr


def test_refusals_are_french_first(home: Home) -> None:
    """Issue 20 §1: a refusal the operator reads is French first (the English after it, in parentheses),
    exit codes as before."""
    missing = home("flows", "CPP0000000099")
    assert (
        missing.exit_code == 2 and missing.stderr == "relais flows: aucun flux CPP0000000099 (no flow CPP0000000099)\n"
    )
    bad_name = home("users", "add", "not a name", "--role", "ops")
    assert bad_name.exit_code == 2 and bad_name.stderr.startswith("relais users: nom d'utilisateur invalide")
    no_password = home("users", "add", "zoe", "--role", "ops")  # stdin empty
    assert no_password.exit_code == 2 and "aucun mot de passe sur l'entrée standard" in no_password.stderr
    assert "zoe" not in home("users", "list").stdout
    revoke = home("api", "token", "revoke", "nope")
    assert revoke.exit_code == 1 and revoke.stderr.startswith("relais api: aucun jeton actif nope")
    assert home("api", "token", "list").stdout == "aucun jeton\n"
    empty = home("flows", "--partner", "nobody")
    assert empty.exit_code == 0 and empty.stdout.startswith("aucun flux\n")
