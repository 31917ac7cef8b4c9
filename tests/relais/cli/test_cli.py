"""The `relais` command line: its output contracts, exit codes and end-to-end commands.

Most calls go through click's CliRunner (fast, in process); a few run the installed
`relais` console script in a subprocess to prove the entry point itself works.
The RELAIS_* environment is cleared so every command works on its own --home.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import time
import zipfile
from importlib.metadata import version as dist_version
from pathlib import Path

import pytest
import structlog
from click.testing import CliRunner

from flows.domain import cdar as cdar_ns
from flows.domain import log
from flows.io import safexml
from flows.returns import report as returnflow
from flows.store import Store
from relais import generate as gen
from relais.cli import main
from validators import cdar as official_cdar

RELAIS = Path(sys.executable).with_name("relais")
LOCATION = re.compile(r"^line \d+, column \d+")
DOC_KEYS = {"path", "syntax", "profile", "valid", "errors"}
PROFILES = {"minimum", "basicwl", "basic", "en16931", "extended", "xrechnung", None}
ERROR_KEYS = {"rule", "flag", "location", "message"}
SYNTAXES = {"ubl-invoice", "ubl-creditnote", "cii", "facturx", None}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """No RELAIS_* setting leaks in; structlog is left as it was found (the CLI configures it)."""
    for key in list(os.environ):
        if key.startswith("RELAIS_"):
            monkeypatch.delenv(key)
    saved, configured, was = structlog.get_config(), log._configured, structlog.is_configured()
    yield
    if was:
        structlog.configure(**saved)
    else:  # configure() would mark structlog configured with its console defaults: no JSON logs after
        structlog.reset_defaults()
    log._configured = configured


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(*args: object, **kwargs):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False, **kwargs)

    return invoke


def _subprocess(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
    return subprocess.run([str(RELAIS), *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


@pytest.fixture
def docs(tmp_path, directory_file):
    """Generated invoices: valid UBL, UBL credit note, CII and Factur-X PDF, one XSD-invalid UBL, a text file."""
    _, recipients = directory_file
    out = tmp_path / "docs"
    out.mkdir()
    good = next(gen.plan(1, 2, recipients, seed=3))
    credit = next(gen.plan(1, 2, recipients, seed=3, credit_note_ratio=1.0))
    bad = next(s for s in gen.plan(50, 2, recipients, invalid_ratio=1.0, seed=2) if s.defect == "xsd-amount")
    files = {
        "ubl": ("good-ubl.xml", gen.document("ubl", good)[1]),
        "credit": ("credit-ubl.xml", gen.document("ubl", credit)[1]),
        "cii": ("good-cii.xml", gen.document("cii", good)[1]),
        "pdf": ("good-facturx.pdf", gen.document("facturx", good)[1]),
        "bad": ("bad-amount.xml", gen.document("ubl", bad)[1]),
        "text": ("notes.txt", b"ceci n'est pas une facture\n"),
    }
    paths = {}
    for key, (name, data) in files.items():
        paths[key] = out / name
        paths[key].write_bytes(data)
    return paths


def _check_contract(doc: object) -> list[dict]:
    """The `validate --json` contract, key sets and types exactly; returns the documents."""
    assert isinstance(doc, dict) and set(doc) == {"documents", "rulesets", "engine"} and doc["engine"] == "native"
    rulesets = doc["rulesets"]
    assert isinstance(rulesets, dict) and all(isinstance(v, str) for v in rulesets.values())
    assert {"en16931-ubl", "en16931-cii", "facturx"} <= set(rulesets)
    documents = doc["documents"]
    assert isinstance(documents, list)
    for d in documents:
        assert set(d) == DOC_KEYS
        assert isinstance(d["path"], str)
        assert d["syntax"] in SYNTAXES
        assert d["profile"] in PROFILES
        assert d["profile"] is None or d["syntax"] == "facturx"
        assert isinstance(d["valid"], bool)
        assert isinstance(d["errors"], list)
        for e in d["errors"]:
            assert set(e) == ERROR_KEYS
            assert all(isinstance(e[k], str) for k in ERROR_KEYS)
            assert e["flag"] in ("fatal", "warning")
        assert d["valid"] == (not any(e["flag"] == "fatal" for e in d["errors"]))
    return documents


# ---- validate ------------------------------------------------------------------------


def test_validate_json_all_valid(cli, docs):
    files = [docs["ubl"], docs["credit"], docs["cii"], docs["pdf"]]
    result = cli("validate", "--json", *files)
    assert result.exit_code == 0, result.output
    documents = _check_contract(json.loads(result.stdout))
    assert [d["path"] for d in documents] == [str(f) for f in files]
    assert [d["syntax"] for d in documents] == ["ubl-invoice", "ubl-creditnote", "cii", "facturx"]
    assert all(d["valid"] and d["errors"] == [] for d in documents)
    assert result.stdout.count("\n") == 1  # one JSON object, one line


def test_validate_json_one_invalid(cli, docs):
    result = cli("validate", "--json", docs["ubl"], docs["bad"], docs["text"])
    assert result.exit_code == 1, result.output
    good, bad, text = _check_contract(json.loads(result.stdout))
    assert good["valid"] is True
    assert bad["syntax"] == "ubl-invoice" and bad["valid"] is False
    [error] = bad["errors"]
    assert error["rule"] == "XSD" and error["flag"] == "fatal"
    assert LOCATION.match(error["location"]), error
    assert "PriceAmount" in error["message"] and "not a valid value" in error["message"]
    assert text["syntax"] is None and text["valid"] is False
    assert [e["rule"] for e in text["errors"]] == ["RLS-T02"]


def test_validate_text_mode(cli, docs):
    result = cli("validate", docs["ubl"], docs["pdf"], docs["bad"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{docs['ubl']}: ubl-invoice - valide"
    assert lines[1] == f"{docs['pdf']}: facturx en16931 - valide"
    assert lines[2] == f"{docs['bad']}: ubl-invoice - INVALIDE"
    assert re.match(
        r"^  \[fatal\] XSD en line \d+, column \d+ .* : Le document n'est pas conforme à son schéma XML : ", lines[3]
    )
    assert len(lines) == 4


def test_validate_usage_errors_exit_2(cli, docs, tmp_path):
    missing = tmp_path / "nope.xml"
    result = cli("validate", "--json", docs["ubl"], missing)
    assert result.exit_code == 2
    assert result.stdout == ""  # nothing half-printed
    assert f"impossible de lire {missing}" in result.stderr
    result = cli("validate", tmp_path)  # a folder is not a readable file either
    assert result.exit_code == 2
    result = cli("validate")
    assert result.exit_code == 2
    assert "Missing argument" in result.stderr


def test_validate_reports_a_missing_xsd_as_usage_error(cli, docs, tmp_path):
    result = cli("validate", docs["cii"], env={"RELAIS_CII_XSD": str(tmp_path / "none.xsd")})
    assert result.exit_code == 2
    assert "XSD not found" in result.stderr


def test_validate_through_the_console_script(docs):
    assert RELAIS.is_file(), RELAIS
    done = _subprocess("validate", "--json", docs["cii"], docs["bad"])
    assert done.returncode == 1, done.stderr
    cii, bad = _check_contract(json.loads(done.stdout))
    assert cii["valid"] and not bad["valid"]
    done = _subprocess("validate", docs["ubl"])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{docs['ubl']}: ubl-invoice - valide\n"
    done = _subprocess("validate")
    assert done.returncode == 2


# ---- generate and directory import ----------------------------------------------------


@pytest.mark.parametrize(
    "fmt,batch,suffix,count",
    [
        ("ubl", "zip", ".zip", 1),
        ("cii", "tar.gz", ".tar.gz", 1),
        ("ubl", "none", ".xml", 3),
        ("facturx", "none", ".pdf", 3),
    ],
)
def test_generate_writes_what_it_says(cli, tmp_path, fmt, batch, suffix, count):
    out = tmp_path / "out"
    result = cli("generate", "--format", fmt, "-n", 3, "-l", 2, "--batch", batch, "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{count} fichier(s) écrit(s) dans {out}\n"
    files = sorted(out.iterdir())
    assert len(files) == count and all(f.name.endswith(suffix) for f in files)
    if batch == "zip":
        with zipfile.ZipFile(files[0]) as z:
            assert z.namelist() == ["INV-000001.xml", "INV-000002.xml", "INV-000003.xml"]
    elif batch == "tar.gz":
        with tarfile.open(files[0]) as t:
            assert t.getnames() == ["INV-000001.xml", "INV-000002.xml", "INV-000003.xml"]


def test_generate_directory_imports(cli, tmp_path):
    out, home = tmp_path / "out", tmp_path / "home"
    annuaire = tmp_path / "dir" / "annuaire.json"
    result = cli("generate", "-n", 2, "--out", out, "--directory", annuaire)
    assert result.exit_code == 0, result.output
    assert json.loads(annuaire.read_text())["format"] == "relais-directory/1"
    result = cli("--home", home, "directory", "import", annuaire)
    assert result.exit_code == 0, result.output
    first = json.loads(annuaire.read_text())["version"]
    assert first.startswith("generated-")
    assert result.stdout == f"annuaire version {first} importé : 12 structures\n"
    result = cli("--home", home, "directory", "versions")
    assert result.exit_code == 0 and result.stdout.startswith(f"{first}\t")
    result = cli("--home", home, "directory", "import", annuaire)  # the same file again
    assert result.exit_code == 1
    assert "already imported" in result.stderr
    second = tmp_path / "dir" / "annuaire-2.json"  # a second generated directory is a new version
    assert cli("generate", "-n", 1, "--out", out, "--directory", second).exit_code == 0
    assert json.loads(second.read_text())["version"] != first
    result = cli("--home", home, "directory", "import", second)
    assert result.exit_code == 0, result.output
    assert len(cli("--home", home, "directory", "versions").stdout.splitlines()) == 2


def test_generate_refuses_bad_options(cli, tmp_path):
    for args in (["-l", 0], ["-n", -1], ["--invalid-ratio", 1.5], ["--invalid-ratio", 0.6, "--misrouted-ratio", 0.6]):
        result = cli("generate", "--out", tmp_path / "x", *args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_directory_import_of_a_bad_file(cli, tmp_path, directory_file):
    path, _ = directory_file
    doc = json.loads(path.read_text())
    doc["structures"][0]["siret"] = "12345678901234"
    del doc["structures"][1]["name"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    result = cli("--home", tmp_path / "home", "directory", "import", bad)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "structures[0]: invalid SIRET '12345678901234'" in result.stderr
    assert "structures[1]: missing name" in result.stderr
    assert result.stderr.startswith("relais directory import: directory file rejected")

    bad.write_text("{not json")
    result = cli("--home", tmp_path / "home", "directory", "import", bad)
    assert result.exit_code == 1
    assert "not JSON" in result.stderr
    result = cli("--home", tmp_path / "home", "directory", "import", tmp_path / "missing.json")
    assert result.exit_code == 2


# ---- demo ----------------------------------------------------------------------------


def _return_flows(home: Path) -> list[Path]:
    return sorted(home.glob("dropzones/*/out/CR_*.xml"))  # integration reports (status return flows: ST*)


def test_demo_end_to_end_and_again(cli, tmp_path):
    home = tmp_path / "demo"
    result = cli("demo", "--home", home, "--invoices", 12, "--lines", 2)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert re.search(r"^6 flux, 28 factures \(\d+ acceptées, \d+ rejetées\) en \d+,\d s$", out, re.M), out
    assert re.search(r"^statuts des flux : .*IN_REJETE 2", out, re.M), out
    assert "erreurs les plus fréquentes :" in out and "RLS-T11" in out and "RLS-T02" in out
    from flows.domain.rule import REGISTRY

    top = re.findall(r"^ +\d+ x (RLS-\S+|XSD) +(.*)$", out.split("erreurs les plus fréquentes :", 1)[1], re.M)
    assert {"RLS-T11", "RLS-T02"} <= {code for code, _ in top}, out
    for code, said in top:  # Relais' own rules in French, as the rule declares it (the store keeps English)
        assert said.startswith(REGISTRY[code].message_fr[:110]), (code, said)
    assert "CPP0000000006" in out
    said = r"^flux retour \(CPPStatut\) sous .*/out/ : 6 comptes rendus d'intégration \(CR_\*\), \d+ flux de statuts \(ST\*\)$"
    assert re.search(said, out, re.M), out
    returns = _return_flows(home)
    assert len(returns) == 11  # the 6 flows, the 4 deposits of the circuits, the B2B invoice of the reform part
    for path in returns:
        returnflow.validate(path)
    assert (home / "relais.db").is_file()
    _circuits_walk(out, home)
    _reform_part(out, home)
    _next_steps_work(cli, out, home)

    result = cli("--home", home, "demo", "--invoices", 3, "--lines", 1)  # the main --home works too
    assert result.exit_code == 0, result.output
    assert "CPP0000000006" in result.stdout and "CPP0000000015" not in result.stdout  # wiped, not added to
    assert len(_return_flows(home)) == 11


def _circuits_walk(out: str, home: Path) -> None:
    """A works billing file and a sub-contractor's invoice are deposited in their order, their actors
    registered, and the circuits walked: each actor's move made (the statuses in the store, the platform's
    pass on after the titulaire's validation), and each depositor told by a status return flow."""
    part = out.split("\ncadres de facturation :", 1)[1].split("\nEt ensuite :", 1)[0]
    deposits = re.findall(r"^  dépôt (\d) : (.*)$", part, re.M)
    assert deposits == [
        ("1", "A4-000001 (le titulaire), A9-000001 (le sous-traitant)"),
        ("2", "A15-000001 (la maîtrise d'œuvre)"),
        ("3", "A19-000001 (la maîtrise d'ouvrage)"),
    ], part
    assert "introuvable" not in part and "refusé" not in part, part
    rows = (home / "acteurs.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0] == "siret;name;role" and {r.rsplit(";", 1)[1] for r in rows[1:]} == {"titulaire", "moe"}
    assert f"actors import {home / 'acteurs.csv'}" in part
    moves = re.findall(
        r"^      (le titulaire|la maîtrise d'\S+|le service financier du destinataire) \((\d{14})\) : (.*)$", part, re.M
    )
    assert [(who, said) for who, _, said in moves] == [
        ("la maîtrise d'œuvre", "PRISE_EN_COMPTE_MOE"),
        ("le titulaire", "VALIDEE_1 puis MISE_A_DISPOSITION"),
        ("la maîtrise d'ouvrage", "PRISE_EN_COMPTE_MOA"),
        ("la maîtrise d'ouvrage", "TRANSMISE_MOA"),
        ("le service financier du destinataire", "SERVICE_FAIT"),
    ], part

    store = Store.open(f"sqlite:///{home / 'relais.db'}", migrate=False)
    try:
        assert {(a.siret, a.role) for a in store.actors()} == {tuple(r.split(";")[::2]) for r in rows[1:]}
        pieces = {n: store.invoices_by_number(n)[0] for n in ("A4-000001", "A15-000001", "A19-000001", "A9-000001")}
        assert {n: p.status.name for n, p in pieces.items()} == {
            "A4-000001": "PRISE_EN_COMPTE_MOE",
            "A15-000001": "TRANSMISE_MOA",
            "A19-000001": "SERVICE_FAIT",
            "A9-000001": "MISE_A_DISPOSITION",
        }
        works = pieces["A4-000001"].id
        assert [p.billing_file_id for n, p in pieces.items() if n != "A9-000001"] == [works] * 3
        history = [(h.status.name, h.actor.name) for h in store.invoice_history(pieces["A9-000001"].id)]
        assert history[-2:] == [("VALIDEE_1", "VALIDATOR"), ("MISE_A_DISPOSITION", "PLATFORM")], history
    finally:
        store.close()
    delivered = {path.stem for path in (home / "delivery").rglob("*.xml")}
    assert {n for n, p in pieces.items() if p.id in delivered} == {
        "A9-000001",
        "A19-000001",
    }  # validated, or no circuit
    said: dict[str, list[tuple[str, str, str]]] = {}
    for path in sorted(home.glob("dropzones/*/out/ST*.xml")):
        returnflow.validate(path)
        if path.parent.parent.name in ("titulaire", "sous-traitant", "moe", "moa"):
            root = safexml.parse(path.read_bytes()).getroot()
            said.setdefault(path.parent.parent.name, []).extend(
                (
                    e.findtext("NumeroFacture"),
                    e.findtext("DonneesStatut/LibelleStatut"),
                    e.findtext("DonneesStatut/Acteur"),
                )
                for e in root.iter("CPPFactureStatut")
            )
    assert said == {
        "titulaire": [("A4-000001", "PRISE_EN_COMPTE_MOE", "MOE")],
        "sous-traitant": [("A9-000001", "VALIDEE_1", "VALIDATEUR"), ("A9-000001", "MISE_A_DISPOSITION", "PLATEFORME")],
        "moe": [("A15-000001", "PRISE_EN_COMPTE_MOA", "MOA"), ("A15-000001", "TRANSMISE_MOA", "MOA")],
        "moa": [("A19-000001", "MISE_A_DISPOSITION", "PLATEFORME"), ("A19-000001", "SERVICE_FAIT", "DESTINATAIRE")],
    }, said
    assert "sous-traitant/out/ST" in part and "A9-000001 VALIDEE_1 (VALIDATEUR)" in part, part


def _cdar_lines(path: Path) -> list[tuple[str, str]]:
    """(invoice number, status code) of each line of a CDAR message, read with lxml (not Relais's reader)."""
    ns = {"rsm": cdar_ns.RSM, "ram": cdar_ns.RAM}
    refs = (
        safexml.parse(path.read_bytes())
        .getroot()
        .iterfind("rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument", ns)
    )
    return [
        (r.findtext("ram:IssuerAssignedID", namespaces=ns), r.findtext("ram:ProcessConditionCode", namespaces=ns))
        for r in refs
    ]


def _reform_part(out: str, home: Path) -> None:
    """The reform part: pa-demo (a CDAR platform) gets its integration report and status return as CDAR messages
    the official XSD and BR-FR-CDV schematron accept (Saxon, the oracle); a B2B invoice is routed to it by the
    reform's directory (EN_COURS_ACHEMINEMENT, its file in pa-demo's out folder); pa-demo's two CDAR messages
    (202 + 203, 204 + 205) are applied, and the depositor hears every change in its own vocabulary (CPPStatut)."""
    from flows.domain.history import Source
    from flows.domain.lifecycle import Actor

    part = out.split("\nréforme 2026 :", 1)[1].split("\nEt ensuite :", 1)[0]
    pa_out = home / "dropzones" / "pa-demo" / "out"
    messages = sorted(pa_out.glob("CDAR_*.xml"))
    assert [p.name[:8] for p in messages] == ["CDAR_CPP", "CDAR_ST0"], messages
    for path in messages:
        assert official_cdar.check(path.read_bytes(), runner=official_cdar.saxon()) == [], path
        assert f"pa-demo reçoit {path.name} (conforme au XSD CDAR D22B et au schématron BR-FR-CDV officiels)" in part
    report, statuses = (_cdar_lines(p) for p in messages)
    assert sorted(code for _, code in report) == ["200", "200", "213"], report
    accepted = sorted(n for n, code in report if code == "200")
    assert sorted(statuses) == [(n, "203") for n in accepted], statuses  # delivered to their public buyers
    assert "    INV-000901 200 Déposée" in part and "213 Rejetée motif " in part, part
    assert (home / "annuaire-reforme.csv").is_file() and "3 lignes importées" in part

    store = Store.open(f"sqlite:///{home / 'relais.db'}", migrate=False)
    try:
        [inv] = store.invoices_by_number("INV-000951")
        assert (inv.status.name, inv.routed_platform, inv.routed_away) == ("APPROUVEE", "0042", True)
        assert (pa_out / f"{inv.id}.xml").is_file()  # issued to pa-demo over its channel (its folder)
        history = [(h.status.name, h.actor, h.source) for h in store.invoice_history(inv.id)]
        assert history[-5:] == [
            ("EN_COURS_ACHEMINEMENT", Actor.PLATFORM, Source.PLATFORM),
            *(
                (s, Actor.PARTNER_PLATFORM, Source.CDAR)
                for s in ("RECUE", "MISE_A_DISPOSITION", "PRISE_EN_CHARGE", "APPROUVEE")
            ),
        ], history
        received = store.cdar_list(direction="in")
        assert sorted((r.message_id, r.partner, str(r.outcome)) for r in received) == [
            ("PAD-1", "pa-demo", "applied"),
            ("PAD-2", "pa-demo", "applied"),
        ]
    finally:
        store.close()
    assert re.search(r"PAD-1 \(202 Reçue puis 203 Mise à disposition\) : flux CPP\d+ IN_INTEGRE$", part, re.M), part
    assert re.search(r"PAD-2 \(204 Prise en charge puis 205 Approuvée\) : flux CPP\d+ IN_INTEGRE$", part, re.M), part
    assert "la facture INV-000951 est maintenant APPROUVEE" in part
    heard = []
    for path in sorted((home / "dropzones" / "operateur-ubl" / "out").glob("ST*.xml")):
        returnflow.validate(path)
        root = safexml.parse(path.read_bytes()).getroot()
        heard += [
            (e.findtext("DonneesStatut/IdStatut"), e.findtext("DonneesStatut/Acteur"))
            for e in root.iter("CPPFactureStatut")
            if e.findtext("NumeroFacture") == "INV-000951"
        ]
    assert heard == [
        ("02", "PLATEFORME"),
        ("60", "PLATEFORME_PARTENAIRE"),
        ("03", "PLATEFORME_PARTENAIRE"),
        ("61", "PLATEFORME_PARTENAIRE"),
        ("62", "PLATEFORME_PARTENAIRE"),
    ], heard
    assert "operateur-ubl l'apprend par dropzones/operateur-ubl/out/ST" in part


def _next_steps_work(cli, out: str, home: Path) -> None:
    """The summary ends with the next commands (a flow, the web application, the API), for this home,
    and they run as printed: the user is added, the SIRET is a recipient's and gets its token."""
    steps = out.split("\nEt ensuite :\n", 1)[1]
    commands = [line.strip() for line in steps.splitlines() if line.startswith("    ")]
    shown = f"relais --home {home} "
    ours = [c.split(shown, 1)[1] for c in commands if shown in c]
    assert [c.split()[:2] for c in ours] == [
        ["flows", "CPP0000000001"],
        ["users", "add"],
        ["web", "serve"],
        ["api", "token"],
        ["api", "serve"],
    ], commands
    flow, add, web, token, api = ours
    assert web.endswith("--port 8090") and api.endswith("--port 8091")
    assert commands[-1] == 'curl -H "Authorization: Bearer <jeton>" http://127.0.0.1:8091/api/v1/invoices'
    (piped,) = [c for c in commands if c.endswith(add)]
    password = shlex.split(piped.split(" | ")[0])[1]
    result = cli("--home", home, *shlex.split(add), input=password + "\n")
    assert result.exit_code == 0, result.output
    result = cli("--home", home, *shlex.split(token))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("rls_")
    assert any((home / "delivery" / token.split()[-1]).iterdir())  # a structure that received invoices
    result = cli("--home", home, *shlex.split(flow))
    assert result.exit_code == 0 and "CPP0000000001" in result.stdout, result.output
    activate = Path(sys.prefix, "bin", "activate").resolve()
    assert (commands[0].startswith(". ") and Path(commands[0][2:]).resolve() == activate) == (
        sys.prefix != sys.base_prefix and not os.environ.get("VIRTUAL_ENV")
    )  # relais is in the venv: a terminal that did not activate it is told how


def test_demo_refuses_a_folder_it_did_not_make(cli, tmp_path):
    home = tmp_path / "precious"
    home.mkdir()
    (home / "data.txt").write_text("keep me")
    result = cli("demo", "--home", home, "--invoices", 3)
    assert result.exit_code == 1
    assert "is not a demo folder" in result.stderr
    assert sorted(p.name for p in home.iterdir()) == ["data.txt"]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    result = cli("demo", "--home", a_file)
    assert result.exit_code == 1 and "is not a folder" in result.stderr
    result = cli("demo", "--home", tmp_path / "d", "--invoices", 0)
    assert result.exit_code == 2


def test_demo_ignores_relais_home(cli, tmp_path, monkeypatch):
    """RELAIS_HOME names the real data folder: the demo never takes it over."""
    real = tmp_path / "real"
    real.mkdir()
    monkeypatch.chdir(tmp_path)
    result = cli("demo", "--invoices", 3, "--lines", 1, env={"RELAIS_HOME": str(real)})
    assert result.exit_code == 0, result.output
    assert list(real.iterdir()) == []
    assert len(_return_flows(tmp_path / "var" / "demo")) == 11


# ---- flows ---------------------------------------------------------------------------


@pytest.fixture
def processed_home(cli, tmp_path, directory_file):
    """A home with one processed zip flow holding XSD-rejected and routed invoices."""
    path, recipients = directory_file
    home = tmp_path / "home"
    assert cli("--home", home, "directory", "import", path).exit_code == 0
    inbox = home / "dropzones" / "op-a" / "in"
    [batch] = gen.write_batch(inbox, "ubl", 10, 2, batch="zip", recipients=recipients, invalid_ratio=0.3, seed=5)
    old = time.time() - 60
    os.utime(batch, (old, old))
    result = cli("--home", home, "run", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    defects = [s.defect for s in gen.plan(10, 2, recipients, invalid_ratio=0.3, seed=5)]
    assert "xsd-amount" in defects or "xsd-missing-id" in defects
    return home, batch.name, defects


def test_flows_list_and_show(cli, processed_home):
    home, name, defects = processed_home
    result = cli("--home", home, "flows")
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split()[:2] == ["flux", "partenaire"]
    assert row.startswith("CPP0000000001") and "IN_INTEGRE_PARTIEL" in row and row.endswith(name)

    result = cli("--home", home, "flows", "CPP0000000001")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert len(re.findall(r"^  CPP0000000001-\d{5}  ", out, re.M)) == 10  # each invoice by its id
    rejected = sum(d is not None for d in defects)
    assert len(re.findall(r"^  CPP0000000001-\d{5}  05 REJETEE", out, re.M)) == rejected
    assert re.search(r"^        \[fatal\] XSD en line \d+, column \d+", out, re.M), out
    assert "file d'envoi return : 1 sent" in out


def test_flows_json(cli, processed_home):
    home, name, defects = processed_home
    result = cli("--home", home, "flows", "--json")
    assert result.exit_code == 0
    listing = json.loads(result.stdout)
    assert listing["next_cursor"] is None
    [flow] = listing["flows"]
    assert flow["id"] == "CPP0000000001" and flow["original_name"] == name
    assert isinstance(flow["rulesets"], dict) and flow["parked"] is False
    assert (flow["invoice_count"], flow["rejected_count"]) == (10, sum(d is not None for d in defects))
    assert flow["status"] == "IN_INTEGRE_PARTIEL"

    result = cli("--home", home, "flows", "CPP0000000001", "--json")
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert set(shown) == {"flow", "errors", "invoices", "outbox", "as2"}
    assert len(shown["invoices"]) == 10
    for inv, defect in zip(shown["invoices"], defects, strict=True):
        assert (inv["status"] == "05") == (defect is not None)
        assert all(set(e) == ERROR_KEYS for e in inv["errors"])

    result = cli("--home", home, "flows", "--status", "IN_REJETE")
    assert result.exit_code == 0 and result.stdout == "aucun flux\n"
    assert json.loads(cli("--home", home, "flows", "--status", "IN_REJETE", "--json").stdout) == {
        "flows": [],
        "next_cursor": None,
    }


def test_flows_unknown_id_and_status(cli, tmp_path):
    result = cli("--home", tmp_path / "home", "flows", "CPP9999999999")
    assert result.exit_code == 2
    assert "aucun flux CPP9999999999" in result.stderr
    result = cli("--home", tmp_path / "home", "flows", "--status", "BOGUS")
    assert result.exit_code == 2


# ---- rules and version -------------------------------------------------------------------


def test_rules_lists_every_code(cli):
    result = cli("rules")
    assert result.exit_code == 0
    codes = re.findall(r"^(\S+)\t(fatal|warning)\t\S", result.stdout, re.M)
    listed = [c for c, _ in codes]
    expected = {f"RLS-T{i:02d}" for i in range(1, 15)} | {"RLS-T99"} | {f"RLS-R{i:02d}" for i in range(1, 10)} | {"XSD"}
    assert expected <= set(listed)
    assert len(listed) == len(set(listed))
    assert len(re.findall(r"^\t\t\S", result.stdout, re.M)) == len(listed)  # each with its French message


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"relais {dist_version('relais')}"
    versions = dict(line.strip().split(": ", 1) for line in lines[1:])
    assert {"en16931-ubl", "en16931-cii", "facturx", "br-fr"} <= set(versions)
    assert versions["en16931-ubl"].startswith("1.3.")
    done = _subprocess("--version")
    assert done.returncode == 0 and done.stdout == result.stdout


def _pdf_with(attachments: dict[str, bytes]) -> bytes:
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(595, 842)
    for name, data in attachments.items():
        writer.add_attachment(name, data)
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def test_validate_pdf_refusals_name_the_attachment(cli, docs, tmp_path):
    """The embedded XML goes through Relais's hardened parser: a DOCTYPE is refused, not parsed."""
    xxe = (
        b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n'
        b'<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100">'
        b"&e;</rsm:CrossIndustryInvoice>"
    )
    cases = {
        "doctype.pdf": (_pdf_with({"factur-x.xml": xxe}), "RLS-T04", "embedded factur-x.xml"),
        "order.pdf": (_pdf_with({"factur-x.xml": b"<order/>"}), "RLS-T10", "embedded factur-x.xml: root element"),
        "no-xml.pdf": (_pdf_with({"notes.txt": b"hello"}), "RLS-T09", "embedded files: notes.txt"),
        # a broken standard attachment is not silently replaced by another XML attachment
        "two.pdf": (
            _pdf_with({"factur-x.xml": b"<broken", "other.xml": docs["cii"].read_bytes()}),
            "RLS-T03",
            "embedded factur-x.xml",
        ),
    }
    for name, (data, _, _) in cases.items():
        (tmp_path / name).write_bytes(data)
    result = cli("validate", "--json", *(tmp_path / n for n in cases))
    assert result.exit_code == 1
    for doc, (name, (_, rule, words)) in zip(_check_contract(json.loads(result.stdout)), cases.items(), strict=True):
        assert [e["rule"] for e in doc["errors"]] == [rule], (name, doc)
        assert words in doc["errors"][0]["message"], (name, doc)
        assert "root:" not in doc["errors"][0]["message"]
    # A PDF whose only attachment is a non-standard *.xml invoice is still read.
    (tmp_path / "custom.pdf").write_bytes(_pdf_with({"invoice.xml": docs["cii"].read_bytes()}))
    result = cli("validate", "--json", tmp_path / "custom.pdf")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["documents"][0]["syntax"] == "facturx"
