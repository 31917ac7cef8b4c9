"""The billing frameworks a structure accepts, in every directory format, kept by the store."""

from __future__ import annotations

import json

import pytest

from flows.directory import importer
from flows.domain.errors import ConfigError
from flows.store import Store

CSV = (
    "identifiant;libelleStructure;estActif;codeServiceDoitEtreRenseigne;numeroEJDoitEtreRenseigne;"
    "gestionNumeroEJOuCodeService;statutMiseEnPaiementNestPasRemonte;recevoirDonneesViaEDI;codeService;"
    "libelleService;estActifService;CadresFacturation\n"
    "21750001600019;Ville de Paris;oui;non;non;non;non;non;COMPTA;Comptabilité;oui;A1 a9|A12\n"
    "21750001600019;Ville de Paris;oui;non;non;non;non;non;RH;RH;oui;A1 a9|A12\n"
    "11000201100044;Commune;oui;non;non;non;non;non;;;;\n"
)


def test_each_format_reads_them_and_the_store_keeps_them(tmp_path):
    _, from_csv = importer.parse(CSV.encode())
    platform = [{"identifiant": "21750001600019", "libelleStructure": "Paris", "cadresFacturation": ["A4"]}]
    _, from_json = importer.parse(json.dumps(platform).encode())
    relais = importer.document("v", [{"siret": "21750001600019", "name": "Paris", "frameworks": ["A15", "A19"]}])
    _, from_relais = importer.parse(json.dumps(relais).encode())
    assert {s.siret: s.frameworks for s in from_csv} == {
        "21750001600019": frozenset({"A1", "A9", "A12"}),
        "11000201100044": None,  # none listed: all accepted
    }
    assert [s.frameworks for s in from_json + from_relais] == [frozenset({"A4"}), frozenset({"A15", "A19"})]
    store = Store.open(f"sqlite:///{tmp_path / 'r.db'}")
    store.import_directory("v1", "0" * 64, from_csv)
    directory = store.load_directory()
    assert directory.get("21750001600019").frameworks == frozenset({"A1", "A9", "A12"})
    assert directory.get("21750001600019").accepts("A9") and not directory.get("21750001600019").accepts("A4")
    assert directory.get("11000201100044").frameworks is None


def test_an_unknown_framework_refuses_the_file():
    with pytest.raises(ConfigError, match="line 2 .*cadresFacturation: unknown billing framework 'A26'"):
        importer.parse(CSV.replace("A1 a9|A12\n2175", "A26\n2175", 1).encode())
