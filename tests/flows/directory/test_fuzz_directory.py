"""Fuzz the directory formats (flows/directory/formats.py, through `flows.directory.importer.parse`).

A directory file comes from an operator's download of the platform's export: for any bytes, random or
a mutation of a valid Relais JSON, platform JSON or CSV export, `importer.parse` returns the structures
or refuses with `ConfigError` naming the problems, never another exception, within the per-input
deadline (tests/support/fuzzing.py). The format readers themselves collect problems and never raise,
for any JSON value (`platform_items`, `parse_platform_json`) and any text (`csv_delimiter`, `parse_csv`).
"""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from flows.directory import formats, importer
from flows.domain.errors import ConfigError
from relais import generate as gen
from tests.support.fuzzing import fuzzed, hostile_bytes, no_hang

RECIPIENTS = gen.sample_directory()[:4]
RELAIS_JSON = json.dumps(gen.directory_document(RECIPIENTS, "relais-1")).encode()
PLATFORM = [
    {
        "identifiant": r.siret,
        "libelleStructure": r.name,
        "estActif": "oui",
        "codeServiceDoitEtreRenseigne": r.service_code_required,
        "parametres": {"numeroEJDoitEtreRenseigne": "0"},
        "services": [{"codeService": c, "libelleService": n, "estActif": a} for c, n, a in r.services],
    }
    for r in RECIPIENTS
]
PLATFORM_JSON = json.dumps({"listeStructures": PLATFORM}, ensure_ascii=False).encode()
CSV = (
    "\ufeff"
    + ";".join(formats.CSV_HEADER)
    + "\r\n"
    + "".join(
        f'{r.siret};"{r.name}";true;false;0;non;;oui;{c};{n};{"1" if a else "0"}\r\n'
        for r in RECIPIENTS
        for c, n, a in (r.services or [("", "", True)])
    )
).encode()
SEEDS = (RELAIS_JSON, PLATFORM_JSON, CSV, json.dumps(PLATFORM).encode("utf-16"))

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
PLATFORM_KEYS = st.sampled_from(sorted(formats.PLATFORM_KEYS | {"siret", "services", "parametres", "statut"}))
SERVICES = st.lists(
    st.dictionaries(st.sampled_from(["codeService", "libelleService", "estActif"]), SCALARS), max_size=3
)
PLATFORM_ITEMS = st.lists(st.dictionaries(PLATFORM_KEYS, SCALARS | SERVICES, max_size=6), max_size=4)


def _parse(data: bytes) -> None:
    with no_hang():
        try:
            version, structures = importer.parse(data)
        except ConfigError:
            return
    assert isinstance(version, str) and all(s.siret for s in structures)


@given(data=hostile_bytes(*SEEDS))
@fuzzed(300)
@example(data=b"[" * 100_000)  # found: RecursionError from json.loads (fixed)
@example(data=b"[" + b"1" * 5000 + b"]")  # found: ValueError, an integer too long to convert (fixed)
@example(data=b"\x00\x00\x00[")
def test_any_bytes_import_or_are_refused(data: bytes) -> None:
    _parse(data)


@given(doc=JSON | st.builds(lambda items: {"structures": items}, PLATFORM_ITEMS) | PLATFORM_ITEMS)
@fuzzed(150)
def test_any_json_document_imports_or_is_refused(doc: object) -> None:
    _parse(json.dumps(doc).encode())
    found = formats.platform_items(doc)
    if found is not None:
        formats.parse_platform_json(*found, formats.Problems())  # collects problems, never raises


@given(
    rows=st.lists(
        st.lists(st.text(max_size=12) | st.sampled_from(["oui", "ACTIF", "", '"', "11000201100044"]), max_size=13),
        max_size=6,
    ),
    delimiter=st.sampled_from([";", ","]),
)
@fuzzed(150)
def test_any_csv_text_is_read_or_refused(rows: list[list[str]], delimiter: str) -> None:
    text = delimiter.join(formats.CSV_HEADER) + "\n" + "\n".join(delimiter.join(r) for r in rows)
    assert formats.csv_delimiter(text) == delimiter
    problems = formats.Problems()
    formats.parse_csv(text, delimiter, problems)
    _parse(text.encode("utf-8", "surrogatepass"))
