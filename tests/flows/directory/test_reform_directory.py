"""The reform's directory: import (CSV, JSON Lines; atomic, line-numbered French errors), the store's look-up
(SQLite and PostgreSQL), and the routing rules RLS-R10 / RLS-R11 beside the B2G rules."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from flows.directory import reform
from flows.domain.errors import ConfigError
from flows.domain.reform_directory import Buyer, candidates, choose
from flows.domain.rule import Stage
from flows.store import Store
from validators import runner
from validators.addressing import Addressing
from validators.context import InvoiceContext

HEADER = "addressingIdentifier;platformId;platformName;platformType;status;effectiveFrom;effectiveTo;businessName;facilityName;routingCodeName"
CSV = "\n".join(
    [
        HEADER,
        "702042755;0042;PA Une;WK;Enabled;;;Société Exemple;;",
        "702042755_70204275500240;9998;Relais;WK;Enabled;;;Société Exemple;Siège;",
        "702042755_70204275500240_SERV-1;0077;PA Deux;WK;Enabled;;;Société Exemple;Siège;Service un",
        "702042755_FACTURES;0042;PA Une;WK;Disabled;;;Société Exemple;;",
        "552100554;0042;PA Une;WK;Upcoming;2026-09-01;;Autre;;",
        "552100554_55210055400013;0042;PA Une;WK;Disabled;;;Autre;Usine;",
    ]
)


@pytest.fixture
def store(store_url):
    url, schema = store_url
    s = Store.open(url, schema=schema)
    yield s
    s.engine.dispose()


def test_csv_import_and_most_specific_lookup(store, tmp_path):
    path = tmp_path / "annuaire.csv"
    path.write_text(CSV, encoding="utf-8")
    version, n = reform.import_file(store, path)
    assert n == 6 and store.reform_version() == version
    with pytest.raises(ConfigError, match="déjà importée"):
        reform.import_file(store, path)
    buyer = Buyer("702042755", "70204275500240", "SERV-1")
    found = store.reform_lines(candidates(buyer))
    m = choose(buyer, found, dt.date(2026, 9, 1), True)
    assert m.line.identifier == "702042755_70204275500240_SERV-1" and m.line.platform.id == "0077"
    m = choose(
        Buyer("702042755", "70204275500240", "OTHER"),
        store.reform_lines(candidates(Buyer("702042755", "70204275500240", "OTHER"))),
        dt.date(2026, 9, 1),
        True,
    )
    assert m.line.identifier == "702042755_70204275500240"
    suffix = Buyer("702042755", None, None, "FACTURES")  # a disabled suffix line: the SIREN line routes
    assert (
        choose(suffix, store.reform_lines(candidates(suffix)), dt.date(2026, 9, 1), True).line.identifier == "702042755"
    )
    assert store.reform_siren_known("552100554") and not store.reform_siren_known("123456789")
    assert store.reform_get("siren", siren="702042755")["business_name"] == "Société Exemple"
    assert store.reform_get("routing-code", siret="70204275500240", routing_identifier="SERV-1")["name"] == "Service un"


def test_jsonl_import_shaped_like_the_contract(store, tmp_path):
    lines = [
        {"format": reform.FORMAT, "version": "2026-09"},
        {
            "addressingIdentifier": "702042755_70204275500240",
            "platformType": "WK",
            "directoryLineStatus": "Enabled",
            "platform": {"id": "0042", "name": "PA Une"},
            "legalUnit": {"businessName": "Société Exemple", "entityType": "PrivateVatRegistered"},
            "facility": {
                "name": "Siège",
                "facilityType": "P",
                "address": {"addressLine1": "1 rue", "postalCode": "75001", "locality": "Paris", "countryCode": "FR"},
            },
        },
        {
            "siren": "552100554",
            "directoryLineStatus": "Upcoming",
            "effectiveFrom": "2026-09-01",
            "platform": {"id": "0042"},
        },
    ]
    path = tmp_path / "annuaire.jsonl"
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines))
    assert reform.import_file(store, path) == ("2026-09", 2)
    assert store.reform_get("siret", siret="70204275500240")["locality"] == "Paris"


def test_a_bad_file_imports_nothing_and_names_its_lines_in_french(store, tmp_path):
    bad = (
        CSV
        + "\n70204275500240;0042;PA;WK;Enabled;;;;;\n702042755;0042;PA;WK;Enabled;;;;;\n552100554_X;0042;PA;XX;Maybe;2026-13-01;;;;"
    )
    path = tmp_path / "bad.csv"
    path.write_text(bad)
    with pytest.raises(ConfigError) as e:
        reform.import_file(store, path)
    text = str(e.value)
    assert "ligne 8 : identifiant d'adressage invalide '70204275500240'" in text
    assert "ligne 9 : identifiant 702042755 déjà donné ligne 2" in text
    assert "ligne 10 : type de plateforme inconnu 'XX'" in text and "ligne 10 : statut inconnu 'Maybe'" in text
    assert "ligne 10 : effectiveFrom : date invalide" in text
    assert store.reform_version() is None and store.reform_lines(["702042755"]) == []


def test_a_missing_column_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="ligne 1 : colonne"):
        reform.parse(b"addressingIdentifier;status\n702042755;Enabled\n")


class Lines:
    def __init__(self, csv_text: str) -> None:
        self.lines = reform.parse(csv_text.encode()).lines

    def reform_lines(self, ids):
        return [ln for ln in self.lines if ln.identifier in ids]

    def reform_siren_known(self, siren):
        return any(ln.address.siren == siren for ln in self.lines)


def _rules(addressing: Addressing, today=dt.date(2026, 8, 1), directory=None) -> list[str]:
    from flows.domain.structures import Directory

    ctx = InvoiceContext(
        addressing=addressing, reform=Lines(CSV), today=today, directory=directory or Directory("v", {})
    )
    return [e.rule for e in runner.run(ctx, [Stage.DIRECTORY])]


def test_routing_rules_fire_with_their_codes():
    assert _rules(Addressing("70204275500240", "SERV-1")) == []  # routed: no finding
    assert _rules(Addressing("55210055400013")) == ["RLS-R11"]  # its SIRET line disabled, SIREN line upcoming
    assert _rules(Addressing("55210055400013"), today=dt.date(2026, 9, 1)) == []  # upcoming line's date has come
    assert _rules(Addressing("35600000000048")) == ["RLS-R03"]  # in neither directory: B2G's rule, unchanged
    assert _rules(Addressing("123456789")) == ["RLS-R02"]  # neither: a 9-digit id is no SIRET, as before
    reformed = Lines(CSV.replace("702042755;0042;PA Une;WK;Enabled;;;Société Exemple;;\n", ""))
    ctx = InvoiceContext(addressing=Addressing("70204275500117"), reform=reformed, today=dt.date(2026, 8, 1))
    assert [e.rule for e in runner.run(ctx, [Stage.DIRECTORY])] == ["RLS-R10"]


def test_the_public_directory_comes_first():
    from flows.domain.structures import Directory, Structure

    s = Structure("70204275500240", "Mairie", True, False, False, False, {})
    assert _rules(Addressing("70204275500240"), directory=Directory("v", {s.siret: s})) == []


def test_cdar_reasons_of_the_new_rules():
    from flows.domain.cdar import REASONS_BY_STATUS, rejection_reason

    for rule in ("RLS-R10", "RLS-R11"):
        assert rejection_reason(rule) in REASONS_BY_STATUS["213"]
