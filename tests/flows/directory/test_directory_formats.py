"""The directory in the platform's own shapes (structure look-up JSON, CSV export) as well as Relais's JSON:
each read back as the same `Directory`, each bad input refused naming its entry, the same routing."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.directory import formats
from flows.directory import importer as dirmod
from flows.domain.errors import ConfigError
from flows.domain.model import InvoiceStatus
from flows.store import Store
from relais import generate as gen
from relais.cli import main
from relais.compose import Runtime
from relais.settings import Settings
from tests.support.helpers import drop, run

HEADER = (
    "identifiant;libelleStructure;estActif;codeServiceDoitEtreRenseigne;numeroEJDoitEtreRenseigne;"
    "gestionNumeroEJOuCodeService;statutMiseEnPaiementNestPasRemonte;recevoirDonneesViaEDI;"
    "codeService;libelleService;estActifService"
)
A, B = "11000201100044", "21750001600019"  # valid SIRETs


def _recipients():
    """The generator's sample directory, with the two new flags set on some structures."""
    out = []
    for i, r in enumerate(gen.sample_directory()):
        out.append((r, i % 3 == 0, i % 4 == 1))  # (recipient, payment_status_not_reported, receives_by_edi)
    return out


def _relais_doc(rows) -> dict:
    doc = gen.directory_document([r for r, _, _ in rows], "relais-1")
    for s, (_, payment, edi) in zip(doc["structures"], rows, strict=True):
        s["payment_status_not_reported"], s["receives_by_edi"] = payment, edi
    return doc


_WORDS = {"yesno": ("oui", "non"), "digits": ("1", "0"), "words": ("true", "false"), "json": (True, False)}


def _b(value: bool, style: str):
    return _WORDS[style][0] if value else _WORDS[style][1]


def _platform_doc(rows, *, wrapped: bool = True):
    styles = list(_WORDS)
    items = []
    for i, (r, payment, edi) in enumerate(rows):
        style = styles[i % len(styles)]  # every spelling of a boolean, across the structures
        item = {
            ("identifiant" if i % 2 else "siret"): r.siret,
            ("libelleStructure" if i % 2 else "raisonSociale"): r.name,
            "codeServiceDoitEtreRenseigne": _b(r.service_code_required, style),
            "numeroEJDoitEtreRenseigne": _b(r.ej_required, style),
            "gestionNumeroEJOuCodeService": _b(r.ej_or_service, style),
            "statutMiseEnPaiementNestPasRemonte": _b(payment, style),
            "recevoirDonneesViaEDI": _b(edi, style),
            "idStructureCPP": 26000 + i,  # the platform's other members are ignored
            "services": [
                {"codeService": c, "libelleService": lbl, "estActif": _b(a, style)} for c, lbl, a in r.services
            ],
        }
        if i % 3:
            item["estActif"] = _b(r.active, style)
        else:
            item["statut"] = "ACTIF" if r.active else "INACTIF"
        items.append(item)
    return {"codeRetour": 0, "listeStructures": items} if wrapped else items


def _csv_text(rows, delimiter: str) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(HEADER.split(";"))
    for i, (r, payment, edi) in enumerate(rows):
        style = ("yesno", "digits", "words")[i % 3]
        head = [
            r.siret,
            r.name,
            _b(r.active, style),
            *(_b(v, style) for v in (r.service_code_required, r.ej_required, r.ej_or_service, payment, edi)),
        ]
        if not r.services:
            w.writerow([*head, "", "", ""])
        for code, label, active in r.services:
            w.writerow([*head, code, label, _b(active, style)])
    return buf.getvalue()


def _write(tmp_path: Path, fmt: str, rows) -> Path:
    """`rows` written in format `fmt` under a name that does not tell the format."""
    path = tmp_path / f"annuaire-{fmt}.dat"
    if fmt == "relais":
        path.write_text(json.dumps(_relais_doc(rows)))
    elif fmt == "platform-json":
        path.write_text(json.dumps(_platform_doc(rows), ensure_ascii=False), encoding="utf-8")
    elif fmt == "platform-json-list":
        path.write_text(json.dumps(_platform_doc(rows, wrapped=False)), encoding="utf-8")
    elif fmt == "csv-bom-semicolon":
        path.write_bytes(b"\xef\xbb\xbf" + _csv_text(rows, ";").encode())
    elif fmt == "csv-comma":
        path.write_bytes(_csv_text(rows, ",").encode())
    else:
        raise AssertionError(fmt)
    return path


def _store(tmp_path: Path, name: str) -> Store:
    return Store.open(f"sqlite:///{tmp_path / name}.db")


FORMATS = ["platform-json", "platform-json-list", "csv-bom-semicolon", "csv-comma"]
DETECTED = {
    "platform-json": dirmod.PLATFORM_JSON,
    "platform-json-list": dirmod.PLATFORM_JSON,
    "csv-bom-semicolon": dirmod.PLATFORM_CSV,
    "csv-comma": dirmod.PLATFORM_CSV,
}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_reads_back_the_same_directory(tmp_path, fmt):
    rows = _recipients()
    reference, other = _store(tmp_path, "relais"), _store(tmp_path, fmt)
    try:
        dirmod.import_file(reference, _write(tmp_path, "relais", rows))
        path = _write(tmp_path, fmt, rows)
        assert dirmod.detect(path.read_bytes()) == DETECTED[fmt]
        version, n = dirmod.import_file(other, path)
        assert n == len(rows)
        expected, got = reference.load_directory(), other.load_directory()
        assert expected is not None and got is not None and got.version == version
        assert got.structures == expected.structures
        # the new flags made it through the store, both ways
        assert sum(s.receives_by_edi for s in got.structures.values()) == sum(e for _, _, e in rows) > 0
        assert sum(s.payment_status_not_reported for s in got.structures.values()) == sum(p for _, p, _ in rows) > 0
        inactive = next(r for r, _, _ in rows if not r.active)
        assert got.structures[inactive.siret].active is False
        with_closed = next(r for r, _, _ in rows if r.inactive_services)
        assert got.structures[with_closed.siret].services[with_closed.inactive_services[0]][1] is False
    finally:
        reference.close()
        other.close()


@pytest.mark.parametrize("fmt", ["relais", *FORMATS])
def test_cli_imports_every_format(tmp_path, fmt):
    rows = _recipients()
    path = _write(tmp_path, fmt, rows)
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["--home", str(home), "directory", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("annuaire version ")
    assert result.stdout.endswith(f": {len(rows)} structures\n")


def test_structure_flags_of_the_latest_version(tmp_path):
    store = _store(tmp_path, "flags")
    try:
        assert store.structure_flags(A) is None  # nothing imported yet
        p = tmp_path / "v1.json"
        p.write_text(
            json.dumps([{"identifiant": A, "libelleStructure": "Commune", "statutMiseEnPaiementNestPasRemonte": "oui"}])
        )
        dirmod.import_file(store, p)
        s = store.structure_flags(A)
        assert s is not None and s.payment_status_not_reported and not s.receives_by_edi and s.active
        p.write_text(
            json.dumps(
                {
                    "version": "v2",
                    "structures": [
                        {
                            "identifiant": A,
                            "libelleStructure": "Commune",
                            "parametres": {"recevoirDonneesViaEDI": "1"},
                            "services": [{"codeService": "FACT", "libelleService": "Factures"}],
                        }
                    ],
                }
            )
        )
        assert dirmod.import_file(store, p) == ("v2", 1)
        s = store.structure_flags(A)
        assert s is not None and not s.payment_status_not_reported and s.receives_by_edi
        assert s.services == {"FACT": ("Factures", True)}
        assert store.structure_flags(B) is None
    finally:
        store.close()


def test_platform_booleans_and_status_words():
    _, [s] = dirmod.parse(
        json.dumps(
            [
                {
                    "identifiant": "110 002 011 00044",
                    "libelleStructure": " Commune ",
                    "statut": "inactif",
                    "codeServiceDoitEtreRenseigne": "OUI",
                    "numeroEJDoitEtreRenseigne": 1,
                    "gestionNumeroEJOuCodeService": "False",
                    "recevoirDonneesViaEDI": "",
                    "services": [{"codeService": "S1", "estActif": "0"}],
                }
            ]
        ).encode()
    )
    assert (s.siret, s.name, s.active) == (A, "Commune", False)
    assert s.service_code_required and s.ej_required and not s.ej_or_service and not s.receives_by_edi
    assert s.services == {"S1": ("S1", False)}


def _csv(*lines: str) -> bytes:
    return ("\n".join([HEADER, *lines]) + "\n").encode()


def _json(*items) -> bytes:
    return json.dumps({"listeStructures": list(items)}).encode()


def _ok(siret=A, **more):
    return {"identifiant": siret, "libelleStructure": "Commune", **more}


BAD = [
    # (file content, what the message must say)
    (b'[{"identifiant": "110', "not JSON"),
    (b"PK\x03\x04 not really a workbook", "XLSX"),
    (_json(_ok(), _ok("12345678901234")), "listeStructures[1]: invalid SIRET '12345678901234'"),
    (_json(_ok(), _ok(B), _ok()), f"listeStructures[2] (SIRET {A}): SIRET listed twice (also listeStructures[0])"),
    (
        _json(_ok(recevoirDonneesViaEDI="peut-être")),
        f"listeStructures[0] (SIRET {A}).recevoirDonneesViaEDI: unknown boolean 'peut-être'",
    ),
    (
        _json(_ok(services=[{"codeService": "S", "estActif": "maybe"}])),
        f"listeStructures[0] (SIRET {A}).services[0].estActif: unknown boolean 'maybe'",
    ),
    (_json(_ok(statut="FERME")), f"listeStructures[0] (SIRET {A}).statut: unknown status 'FERME'"),
    (_json({"identifiant": A, "estActif": True}), f"listeStructures[0] (SIRET {A}): missing libelleStructure"),
    (
        _json(_ok(services=[{"libelleService": "x"}])),
        f"listeStructures[0] (SIRET {A}).services[0]: missing codeService",
    ),
    (_json(_ok(services={"codeService": "S"})), f"listeStructures[0] (SIRET {A}).services: must be a list"),
    (_json(), "listeStructures: no structures"),
    (_csv(f"{A};Commune;1;0;0;0;0;0;;;", "12345678901234;Autre;1;0;0;0;0;0;;;"), "line 3, identifiant: invalid SIRET"),
    (
        _csv(f"{A};Commune;1;0;0;0;0;0;S;Svc;1", f"{B};Autre;1;0;0;0;0;0;;;", f"{A};Commune;1;0;0;0;0;0;S;Svc;1"),
        f"line 4 (SIRET {A}): SIRET listed twice with service S (also line 2)",
    ),
    (
        _csv(f"{A};Commune;1;0;0;0;0;0;;;", f"{A};Commune;1;0;0;0;0;0;;;"),
        f"line 3 (SIRET {A}): SIRET listed twice without a service (also line 2)",
    ),
    (
        _csv(f"{A};Commune;1;0;0;0;0;0;S1;Svc;1", f"{A};Commune;1;1;0;0;0;0;S2;Svc;1"),
        f"line 3 (SIRET {A}): SIRET listed again with other structure values than line 2 (codeServiceDoitEtreRenseigne)",
    ),
    (_csv(f"{A};Commune;peut-être;0;0;0;0;0;;;"), f"line 2 (SIRET {A}), estActif: unknown boolean 'peut-être'"),
    (_csv(f"{A};Commune;1;0;0;0;0;0;S;Svc;vrai"), f"line 2 (SIRET {A}), estActifService: unknown boolean 'vrai'"),
    (_csv(f"{A};Commune;1;0"), "line 2: 4 fields, the header has 11"),
    (_csv(f'{A};"Commune"x;1;0;0;0;0;0;;;'), "line 2: malformed CSV"),
    (_csv(f"{A};;1;0;0;0;0;0;;;"), f"line 2 (SIRET {A}): missing libelleStructure"),
    (
        (HEADER.rsplit(";", 1)[0] + f"\n{A};Commune;1;0;0;0;0;0;;\n").encode(),
        "line 1: missing column(s) estActifService",
    ),
    (HEADER.encode() + b"\n", "no structures"),
    ((HEADER + f"\n{A};Mairie d'\xc9vreux;1;0;0;0;0;0;;;\n").encode("latin-1"), "line 2: not UTF-8"),
    (b"siret libelle\n", "not JSON, nor a CSV export"),
]


@pytest.mark.parametrize("data,needle", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_input_is_refused_naming_the_entry_and_nothing_is_imported(tmp_path, data, needle):
    with pytest.raises(ConfigError) as exc:
        dirmod.parse(data)
    assert needle in str(exc.value)
    path = tmp_path / "annuaire.bin"
    path.write_bytes(data)
    store = _store(tmp_path, "bad")
    try:
        with pytest.raises(ConfigError):
            dirmod.import_file(store, path)
        assert store.load_directory() is None and store.directory_versions() == []
    finally:
        store.close()


def test_a_bad_file_names_every_problem_through_the_cli(tmp_path):
    path = tmp_path / "annuaire.csv"
    path.write_bytes(_csv(f"{A};Commune;oui;non;non;non;non;bof;;;", "12345678901234;X;1;0;0;0;0;0;;;"))
    result = CliRunner().invoke(main, ["--home", str(tmp_path / "home"), "directory", "import", str(path)])
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("relais directory import: directory file rejected")
    assert f"line 2 (SIRET {A}), recevoirDonneesViaEDI: unknown boolean 'bof'" in result.stderr
    assert "line 3, identifiant: invalid SIRET '12345678901234'" in result.stderr


def test_the_relais_format_is_unchanged():
    doc = {"format": "relais-directory/1", "version": "v", "structures": [{"siret": A, "name": "Commune"}]}
    version, [s] = dirmod.parse(json.dumps(doc).encode())
    assert version == "v" and s.active and not s.receives_by_edi and not s.payment_status_not_reported
    doc["structures"][0]["receives_by_edi"] = "oui"  # Relais's own format keeps JSON booleans only
    with pytest.raises(ConfigError, match=r"structures\[0\]\.receives_by_edi: must be true or false"):
        dirmod.parse(json.dumps(doc).encode())
    with pytest.raises(ConfigError, match="relais-directory/1"):  # a Relais document without its format
        dirmod.parse(json.dumps({"structures": [{"siret": A, "name": "Commune"}]}).encode())


def test_csv_header_is_the_documented_one():
    assert ";".join(formats.CSV_HEADER) == HEADER
    root = Path(__file__).resolve().parents[3]
    assert HEADER in (root / "docs" / "directory-formats.md").read_text()
    assert HEADER in (root / "README.md").read_text()


# ---- the same routing whatever the directory's format ---------------------------------------------


def _outcomes(rt: Runtime, flow) -> list[tuple[int, InvoiceStatus, list[str], str | None]]:
    home = str(rt.settings.home)
    return [
        (
            inv.position,
            inv.status,
            sorted(e.rule for e in inv.errors if e.fatal),
            inv.delivered_to.replace(home, "~").replace(flow.id, "FLOW") if inv.delivered_to else None,
        )
        for inv in rt.store.iter_invoices(flow.id)
    ]


@pytest.mark.parametrize("fmt", ["platform-json", "csv-bom-semicolon"])
def test_routing_is_the_same_with_a_platform_directory(rt, directory_file, tmp_path, fmt):
    _, recipients = directory_file
    [batch] = gen.write_batch(
        tmp_path / "batch", "ubl", 7, 1, batch="zip", recipients=recipients, misrouted_ratio=0.6, seed=5
    )
    data = batch.read_bytes()
    drop(rt, "op-a", batch.name, data)
    [reference] = run(rt)

    other = Runtime.open(Settings.from_env(tmp_path / f"home-{fmt}", stable_seconds=0.0))
    try:
        rows = [(r, False, False) for r in recipients]
        dirmod.import_file(other.store, _write(tmp_path, fmt, rows))
        drop(other, "op-a", batch.name, data)
        [flow] = run(other)
        assert flow.status is reference.status
        expected, got = _outcomes(rt, reference), _outcomes(other, flow)
        assert got == expected
        assert {s for _, s, _, _ in got} >= {InvoiceStatus.REJETEE_ROUTAGE, InvoiceStatus.MISE_A_DISPOSITION}
        assert other.store.get_flow(flow.id).directory_version == other.store.directory_versions()[0][0]
    finally:
        other.close()
