"""Routing rules against a directory, one case per rule, and the directory import format."""

from __future__ import annotations

import json

import pytest

from flows.directory import importer as dirmod
from flows.domain.errors import ConfigError
from flows.domain.structures import Directory, Structure
from validators import route
from validators.routing import Addressing

OPEN = Structure("11000201100044", "Commune libre", True, False, False, False, {})
SERVICES = Structure(
    "21750001600019",
    "Ville avec services",
    True,
    True,
    False,
    False,
    {"COMPTA": ("Comptabilité", True), "OLD": ("Ancien", False)},
)
EJ = Structure("19350936100013", "Lycée EJ", True, False, True, False, {})
EITHER = Structure("26690001800018", "Hôpital EJ ou service", True, False, False, True, {"ACHATS": ("Achats", True)})
CLOSED = Structure("20005372600010", "Syndicat dissous", False, False, False, False, {})
DIRECTORY = Directory("t", {s.siret: s for s in (OPEN, SERVICES, EJ, EITHER, CLOSED)})


@pytest.mark.parametrize(
    "addressing,rules",
    [
        (Addressing(OPEN.siret), []),
        (Addressing(None), ["RLS-R01"]),
        (Addressing("11000201100045"), ["RLS-R02"]),
        (Addressing("1100020110004"), ["RLS-R02"]),
        (Addressing("35600000000048"), ["RLS-R03"]),  # La Poste's valid SIRET, unknown here
        (Addressing(CLOSED.siret), ["RLS-R04"]),
        (Addressing(SERVICES.siret), ["RLS-R05"]),
        (Addressing(SERVICES.siret, "NOPE"), ["RLS-R06"]),
        (Addressing(SERVICES.siret, "OLD"), ["RLS-R07"]),
        (Addressing(SERVICES.siret, "COMPTA"), []),
        (Addressing(EJ.siret), ["RLS-R08"]),
        (Addressing(EJ.siret, None, "EJ-123"), []),
        (Addressing(EITHER.siret), ["RLS-R09"]),
        (Addressing(EITHER.siret, "ACHATS"), []),
        (Addressing(EITHER.siret, None, "EJ-9"), []),
        (Addressing(OPEN.siret, "ANY"), ["RLS-R06"]),
    ],
)
def test_routing_rules(addressing, rules):
    errors, structure = route.check(addressing, DIRECTORY)
    assert [e.rule for e in errors] == rules
    assert all(e.message and e.location for e in errors)
    if not rules:
        assert structure is not None and structure.siret == addressing.buyer_siret


def _doc(structures):
    return json.dumps({"format": "relais-directory/1", "version": "v", "structures": structures}).encode()


def test_directory_parse_accepts_the_format():
    version, structures = dirmod.parse(
        _doc(
            [
                {
                    "siret": "110 002 011 00044",
                    "name": "Commune",
                    "active": True,
                    "services": [{"code": "S1", "name": "Svc", "active": False}],
                },
            ]
        )
    )
    assert version == "v"
    [s] = structures
    assert s.siret == "11000201100044" and s.services == {"S1": ("Svc", False)} and s.active


@pytest.mark.parametrize(
    "payload,needle",
    [
        (b"not json", "not JSON"),
        (json.dumps({"format": "other"}).encode(), "relais-directory/1"),
        (_doc([{"siret": "123", "name": "X"}]), "invalid SIRET"),
        (_doc([{"siret": "11000201100044"}]), "missing name"),
        (_doc([{"siret": "11000201100044", "name": "A"}, {"siret": "11000201100044", "name": "B"}]), "twice"),
        (_doc([{"siret": "11000201100044", "name": "A", "active": "yes"}]), "true or false"),
        (_doc([{"siret": "11000201100044", "name": "A", "services": 5}]), "must be a list"),
    ],
)
def test_directory_parse_names_every_problem(payload, needle):
    with pytest.raises(ConfigError) as exc:
        dirmod.parse(payload)
    assert needle in str(exc.value)
