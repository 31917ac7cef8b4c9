"""Hostile but well-formed input: a final rejection naming the rule, bounded memory, one file's
problem staying that file's, and a clean exit (findings of an independent hostile-input run)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from flows.domain.errors import Rejected, UnsafeInput
from flows.domain.model import Container, FlowStatus
from flows.io import safearchive, safexml
from relais import generate as gen
from relais.cli import main
from tests.support.helpers import drop, return_flow, rf_error_codes, run

EXT = "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2"
RELAIS = Path(sys.executable).parent / "relais"
MB = 1_000_000


# ---- hostile documents: a valid UBL invoice carrying odd content in a UBL extension -----------


def ubl(recipients, content: bytes, seed: int = 1) -> bytes:
    """A valid UBL invoice whose ext:ExtensionContent (any XML allowed) holds `content`."""
    data = gen.invoice_xml("ubl", next(gen.plan(1, 1, recipients, seed=seed)))
    root = etree.fromstring(data)
    exts = etree.Element(f"{{{EXT}}}UBLExtensions", nsmap={"ext": EXT})
    ext = etree.SubElement(exts, f"{{{EXT}}}UBLExtension")
    etree.SubElement(ext, f"{{{EXT}}}ExtensionContent").text = "@@HOSTILE@@"
    root.insert(0, exts)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").replace(b"@@HOSTILE@@", content)


def deep(n: int) -> bytes:
    return b"<x:d xmlns:x='urn:x'>" * n + b"</x:d>" * n


def attributes(n: int) -> bytes:
    return b"<x:d xmlns:x='urn:x' " + b" ".join(b'a%d="1"' % i for i in range(n)) + b"/>"


def declarations(n: int) -> bytes:
    return b"<x:d xmlns:x='urn:x' " + b" ".join(b'xmlns:p%d="urn:%d"' % (i, i) for i in range(n)) + b"/>"


def long_name(n: int) -> bytes:
    return b"<x:" + b"n" * n + b" xmlns:x='urn:x'/>"


def big_text(n: int) -> bytes:
    return b"<x:d xmlns:x='urn:x'>" + b"A" * n + b"</x:d>"


def ampersands(n: int) -> bytes:
    return b"<x:d xmlns:x='urn:x'>" + b"R&amp;D " * n + b"</x:d>"


@pytest.fixture(scope="module")
def recipients():
    return gen.sample_directory()


# ---- 1. Saxon's parser limits: refused up front (RLS-T19), never an incident ------------------

# The extension content starts at depth 4 (Invoice, UBLExtensions, UBLExtension, ExtensionContent).
OVER_LIMITS = {
    "depth": (lambda: deep(97), "element depth over 100"),
    "attributes": (lambda: attributes(200), "200 attributes and 1 namespace declarations"),
    "namespace declarations": (lambda: declarations(200), "0 attributes and 201 namespace declarations"),
    "element name": (lambda: long_name(1001), "an element name of 1001 characters"),
    "attribute name": (lambda: b"<x:d xmlns:x='urn:x' " + b"b" * 1001 + b'="1"/>', "attribute name"),
    "prefix": (lambda: b"<" + b"p" * 1001 + b":d xmlns:" + b"p" * 1001 + b"='urn:x'/>", "a namespace prefix"),
    "namespace URI": (lambda: b"<x:d xmlns:x='urn:" + b"u" * 1000 + b"'/>", "a namespace URI of 1004"),
    "PI target": (lambda: b"<?" + b"t" * 1001 + b" x?>", "processing-instruction target"),
}
AT_LIMITS = {
    "depth": deep(96),
    "attributes": attributes(199),
    "namespace declarations": declarations(199),
    "element name": long_name(1000),
    "prefix": b"<" + b"p" * 1000 + b":d xmlns:" + b"p" * 1000 + b"='urn:x'/>",
    "namespace URI": b"<x:d xmlns:x='urn:" + b"u" * 996 + b"'/>",
    "PI target": b"<?" + b"t" * 1000 + b" x?>",
}


@pytest.mark.parametrize("case", sorted(OVER_LIMITS))
def test_over_the_structural_limits_is_refused_naming_the_limit_and_where(recipients, case):
    content, words = OVER_LIMITS[case]
    with pytest.raises(UnsafeInput) as info:
        safexml.parse(ubl(recipients, content()))
    assert info.value.rule.code == "RLS-T19"
    assert words in (info.value.detail or ""), info.value.detail
    assert info.value.location.startswith("line ") or case == "namespace URI" or case == "prefix"


@pytest.mark.parametrize("case", sorted(AT_LIMITS))
def test_the_limits_are_within_what_saxon_parses(recipients, case):
    """What safexml accepts, Saxon's parser accepts too (so the limits are at or below its own)."""
    import saxonche

    from validators.schematron import _source_text

    tree = safexml.parse(ubl(recipients, AT_LIMITS[case]))
    saxonche.PySaxonProcessor(license=False).parse_xml(xml_text=_source_text(tree), encoding="UTF-8")


def test_saxon_refuses_just_over_the_limits(recipients):
    """The measured limits (one over them, Saxon's parser fails with SXXP0003)."""
    import saxonche

    processor = saxonche.PySaxonProcessor(license=False)
    for content in (deep(97), attributes(200), long_name(1001)):
        text = ubl(recipients, content).decode().split("?>", 1)[1]
        with pytest.raises(Exception, match="SXXP0003"):
            processor.parse_xml(xml_text=text, encoding="UTF-8")


def test_a_deep_invoice_is_a_final_rejection_with_a_return_flow(rt, directory_file):
    _, recipients = directory_file
    drop(rt, "op-a", "deep.xml", ubl(recipients, deep(150)))
    drop(rt, "op-a", "attrs.xml", ubl(recipients, attributes(250), seed=2))
    flows = run(rt)
    assert [f.status for f in flows] == [FlowStatus.IN_REJETE] * 2
    for flow in flows:
        assert [e.rule for e in rt.store.flow_errors(flow.id)] == ["RLS-T19"]
        assert rf_error_codes(return_flow(rt, flow)) == ["RLS-T19"]


def test_validate_exits_1_with_the_rule(tmp_path, recipients):
    path = tmp_path / "ns.xml"
    path.write_bytes(ubl(recipients, declarations(250)))
    result = CliRunner().invoke(main, ["validate", "--json", str(path)], env={"RELAIS_RULES_DIR": ""})
    assert result.exit_code == 1, result.output
    [doc] = json.loads(result.stdout)["documents"]
    assert [e["rule"] for e in doc["errors"]] == ["RLS-T19"]
    assert "namespace declarations" in doc["errors"][0]["message"]


def test_many_ampersands_are_validated_not_an_incident(rt, directory_file):
    """Saxon's parser allows 100,000 predefined-entity references: it gets character references."""
    _, recipients = directory_file
    drop(rt, "op-a", "amps.xml", ubl(recipients, ampersands(120_000)))
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_INTEGRE, rt.store.flow_errors(flow.id)


def test_a_document_saxon_still_refuses_is_rejected_not_an_incident(recipients, schematron_runner):
    """Backstop: a tree over the limits that did not come through safexml gets RLS-T19 from the runner."""
    from validators import schematron

    tree = etree.fromstring(ubl(recipients, attributes(250))).getroottree()  # not through safexml
    with pytest.raises(UnsafeInput) as info:
        schematron_runner.run(schematron.discover().ubl, tree)
    assert info.value.rule.code == "RLS-T19" and "jdk.xml.elementAttributeLimit" in (info.value.detail or "")


# ---- 2. memory: text nodes are bounded without being held ------------------------------------


def test_text_nodes_are_bounded(recipients):
    refused = {
        "text": big_text(20 * MB),
        "attribute": b"<x:d xmlns:x='urn:x' v='" + b"v" * 20 * MB + b"'/>",
        "cdata with markup inside": b"<x:d xmlns:x='urn:x'><![CDATA[" + b"<a>" * 7 * MB + b"]]></x:d>",
        "comment": b"<!--" + b"<c>" * 7 * MB + b"-->",
    }
    for case, content in refused.items():
        with pytest.raises(UnsafeInput) as info:
            safexml.parse(ubl(recipients, content))
        assert info.value.rule.code == "RLS-T05", case
    # An attachment under the platform's 10 MB limit (13.7 MB of base64) is read.
    assert safexml.parse(ubl(recipients, big_text(13_700_000))) is not None
    utf16 = ("<a>" + "x" * 17_000_000 + "</a>").encode("utf-16")
    with pytest.raises(UnsafeInput, match="RLS-T05"):
        safexml.parse(utf16)


def test_a_50_mb_text_node_is_rejected(rt, directory_file):
    _, recipients = directory_file
    drop(rt, "op-a", "big.xml", ubl(recipients, big_text(50 * MB)))
    [flow] = run(rt)
    assert flow.status is FlowStatus.IN_REJETE
    assert [e.rule for e in rt.store.flow_errors(flow.id)] == ["RLS-T05"]
    assert rf_error_codes(return_flow(rt, flow)) == ["RLS-T05"]


def _home(tmp_path: Path, directory_file) -> Path:
    home = tmp_path / "home"
    result = CliRunner().invoke(main, ["--home", str(home), "directory", "import", str(directory_file[0])])
    assert result.exit_code == 0, result.output
    return home


def _inbox(home: Path) -> Path:
    inbox = home / "dropzones" / "op-a" / "in"
    inbox.mkdir(parents=True, exist_ok=True)
    return inbox


def _age(inbox: Path) -> None:
    old = time.time() - 60
    for name in os.listdir(os.fsencode(inbox)):
        os.utime(os.fsencode(inbox) + b"/" + name, (old, old))


_PEAK = (
    "import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr); "
    "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(p.returncode)"
)


def relais_run(home: Path, *, workers: int = 2) -> tuple[int, str, int]:
    """`relais run` in a subprocess: (exit code, stderr, peak RSS in MB of its largest process)."""
    env = dict(
        os.environ, RELAIS_STABLE_SECONDS="0", RELAIS_WORKERS=str(workers), RELAIS_RULES_DIR="", PYTHONUNBUFFERED="1"
    )
    p = subprocess.run(
        [sys.executable, "-c", _PEAK, str(RELAIS), "--home", str(home), "run", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    lines = p.stderr.splitlines()
    peak = int(lines[-1].split()[1]) // 1024
    return p.returncode, "\n".join(lines[:-1]), peak


def _flows(home: Path):
    from flows.store import Store
    from relais.settings import Settings

    settings = Settings.from_env(home)
    store = Store.open(settings.database_url, schema=settings.database_schema)
    try:
        return store.list_flows()
    finally:
        store.close()


@pytest.mark.slow
def test_a_200_mb_text_node_stays_under_1_gb(tmp_path, directory_file):
    _, recipients = directory_file
    home = _home(tmp_path, directory_file)
    (_inbox(home) / "big.xml").write_bytes(ubl(recipients, big_text(200 * MB)))
    _age(_inbox(home))
    code, stderr, peak = relais_run(home)
    assert code == 0, stderr[-2000:]
    print(f"peak RSS of the largest process: {peak} MB")
    assert peak <= 1024, f"peak RSS {peak} MB"
    [flow] = _flows(home)
    assert flow.status is FlowStatus.IN_REJETE


# ---- 3. lenient decoding -------------------------------------------------------------------------


def test_a_bom_contradicting_the_declared_encoding_is_refused(recipients):
    data = ubl(recipients, b"")
    for bom, declared in ((b"\xef\xbb\xbf", b"ISO-8859-1"), (b"\xef\xbb\xbf", b"UTF-16")):
        with pytest.raises(Rejected) as info:
            safexml.parse(bom + data.replace(b"encoding='UTF-8'", b"encoding='" + declared + b"'"))
        assert info.value.rule.code == "RLS-T03"
        assert "byte order mark says UTF-8" in (info.value.detail or "") and declared.decode() in (
            info.value.detail or ""
        )
    le = ("<?xml version='1.0' encoding='UTF-16BE'?><a/>").encode("utf-16-le")
    with pytest.raises(Rejected, match="RLS-T03"):
        safexml.parse(b"\xff\xfe" + le)
    assert safexml.parse(b"\xef\xbb\xbf" + data) is not None  # BOM and declaration agreeing
    assert safexml.parse("<?xml version='1.0' encoding='UTF-16'?><a/>".encode("utf-16")) is not None


def _zip_with_nul_name() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ok.xml", b"<a/>")
        z.writestr("evil.xml_X.sh", b"<a/>")
    return buf.getvalue().replace(b"evil.xml_X.sh", b"evil.xml\x00X.sh")


def test_a_zip_entry_name_with_a_nul_byte_is_refused():
    with pytest.raises(UnsafeInput) as info:
        safearchive.check(io.BytesIO(_zip_with_nul_name()), Container.ZIP)
    assert info.value.rule.code == "RLS-T06" and "evil.xml\\x00X.sh" in (info.value.detail or "")


# ---- 4. one bad file name never stops the intake ------------------------------------------------


def test_badly_named_files_are_taken_under_a_recorded_name_and_the_others_go_on(tmp_path, directory_file):
    _, recipients = directory_file
    home = _home(tmp_path, directory_file)
    inbox = _inbox(home)
    gen.write_batch(inbox, "ubl", 3, 1, batch="zip", recipients=recipients, seed=10)
    gen.write_batch(inbox, "ubl", 3, 1, batch="zip", recipients=recipients, seed=11)
    latin1 = os.fsencode(inbox) + b"/facture-\xe9t\xe9.xml"  # not UTF-8
    with open(latin1, "wb") as f:
        f.write(gen.invoice_xml("ubl", next(gen.plan(1, 1, recipients, seed=20))))
    (inbox / "..\\..\\evil.xml").write_bytes(gen.invoice_xml("ubl", next(gen.plan(1, 1, recipients, seed=21))))
    _age(inbox)
    runner = CliRunner()
    result = runner.invoke(main, ["--home", str(home), "run", "-q"], env={"RELAIS_STABLE_SECONDS": "0"})
    assert result.exit_code == 0, (result.output, result.exception)
    flows = {f.original_name: f for f in _flows(home)}
    assert set(flows) == {"ubl-3x1-s10.zip", "ubl-3x1-s11.zip", "facture-%E9t%E9.xml", "..%5C..%5Cevil.xml"}
    assert all(f.status.is_final for f in flows.values()), {n: f.status for n, f in flows.items()}
    assert os.listdir(inbox) == []
    logs = result.stderr if result.stderr_bytes is not None else result.output
    assert "dropzone.unsafe_name" in logs and (b"facture-\xe9t\xe9.xml".hex()) in logs
    # A restart takes nothing again and loops on nothing.
    again = runner.invoke(main, ["--home", str(home), "run", "-q"], env={"RELAIS_STABLE_SECONDS": "0"})
    assert again.exit_code == 0, again.output
    assert len(_flows(home)) == 4


def test_recorded_names_are_unambiguous_text():
    from connectors.folder.dropzone import is_temporary, recorded_name

    assert recorded_name(os.fsdecode(b"a\xff%.xml")) == "a%FF%25.xml"
    assert recorded_name("100%.xml") == "100%.xml"  # a plain name is kept as it is
    assert recorded_name("tab\there.xml") == "tab%09here.xml"
    assert recorded_name(os.fsdecode(b"a\xff.xml")).encode("utf-8")  # storable
    assert not is_temporary("..\\..\\evil.xml") and is_temporary(".upload.xml") and is_temporary("a\\b.xml.part")


# ---- 5. a clean exit ----------------------------------------------------------------------------


def test_relais_run_with_workers_exits_without_a_traceback(tmp_path, directory_file):
    _, recipients = directory_file
    home = _home(tmp_path, directory_file)
    inbox = _inbox(home)
    for seed in (1, 2):
        gen.write_batch(inbox, "ubl", 10, 1, batch="zip", recipients=recipients, seed=seed)  # pooled: >= 8 documents
    (inbox / "one.xml").write_bytes(gen.invoice_xml("ubl", next(gen.plan(1, 1, recipients, seed=3))))
    _age(inbox)
    code, stderr, _peak = relais_run(home, workers=2)
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "Errno 9" not in stderr, stderr[-3000:]
    assert len(_flows(home)) == 3


# ---- all together -------------------------------------------------------------------------------


@pytest.mark.slow
def test_every_hostile_case_at_once_stays_under_1_gb(tmp_path, directory_file):
    _, recipients = directory_file
    home = _home(tmp_path, directory_file)
    inbox = _inbox(home)
    docs = {
        "deep.xml": ubl(recipients, deep(150)),
        "attrs.xml": ubl(recipients, attributes(250), seed=2),
        "ns.xml": ubl(recipients, declarations(250), seed=3),
        "name.xml": ubl(recipients, long_name(1500), seed=4),
        "amps.xml": ubl(recipients, ampersands(120_000), seed=5),
        "big200.xml": ubl(recipients, big_text(200 * MB), seed=6),
        "big50.xml": ubl(recipients, big_text(50 * MB), seed=7),
        "cdata.xml": ubl(recipients, b"<x:d xmlns:x='urn:x'><![CDATA[" + b"<a>" * 30 * MB + b"]]></x:d>", seed=8),
        "bom.xml": b"\xef\xbb\xbf"
        + ubl(recipients, b"", seed=9).replace(b"encoding='UTF-8'", b"encoding='ISO-8859-1'"),
    }
    for name, data in docs.items():
        (inbox / name).write_bytes(data)
    (inbox / "nul.zip").write_bytes(_zip_with_nul_name())
    with zipfile.ZipFile(inbox / "mixed.zip", "w", zipfile.ZIP_DEFLATED) as z:  # pooled: 12 entries
        for i in range(8):
            z.writestr(f"ok{i}.xml", gen.invoice_xml("ubl", next(gen.plan(1, 1, recipients, seed=40 + i))))
        for name in ("deep.xml", "attrs.xml", "amps.xml", "bom.xml"):
            z.writestr(name, docs[name])
    with open(os.fsencode(inbox) + b"/bad-\xff.xml", "wb") as f:
        f.write(gen.invoice_xml("ubl", next(gen.plan(1, 1, recipients, seed=60))))
    (inbox / "..\\..\\evil.xml").write_bytes(gen.invoice_xml("ubl", next(gen.plan(1, 1, recipients, seed=61))))
    gen.write_batch(inbox, "ubl", 10, 1, batch="zip", recipients=recipients, seed=62)
    _age(inbox)
    code, stderr, peak = relais_run(home, workers=2)
    assert code == 0, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    print(f"peak RSS of the largest process: {peak} MB")
    assert peak <= 1024, f"peak RSS {peak} MB"
    flows = _flows(home)
    assert len(flows) == len(docs) + 5
    assert all(f.status.is_final for f in flows), {f.original_name: f.status for f in flows}


def test_the_pool_bounds_chunks_and_what_is_in_flight_in_bytes(monkeypatch):
    """Large documents travel alone, and few of them are held in this process at a time."""
    import concurrent.futures as cf

    from validators.document import Verdict
    from validators.pool import ValidationPool
    from validators.pool import pool as pool_module
    from validators.pool.config import Job, PoolConfig

    sent: list[list[int]] = []
    in_flight: list[int] = []  # bytes sent and not yet handed out, after each submission
    count = {"sent": 0, "out": 0}

    class FakeWorkers:
        broken = False

        def submit(self, jobs, keep_going, br_fr, budget):
            sent.append([j.key for j in jobs])
            count["sent"] += sum(len(j.data) for j in jobs)
            in_flight.append(count["sent"] - count["out"])
            future: cf.Future = cf.Future()
            future.set_result([(j.key, Verdict(Container.XML)) for j in jobs])
            return future

    monkeypatch.setattr(pool_module, "CHUNK_BYTES", 100)
    monkeypatch.setattr(pool_module, "INFLIGHT_BYTES", 250)
    p = ValidationPool(PoolConfig(workers=4, chunk_size=16, inline_below=0))
    monkeypatch.setattr(p, "_pool", lambda: FakeWorkers())
    sizes = [10, 10, 200, 10, 150, 150, 150, 10]
    jobs = [Job(i, b"x" * n, Container.XML, f"{i}.xml") for i, n in enumerate(sizes)]
    keys = []
    for job, _verdict in p.judge_all(iter(jobs), expected=len(jobs)):
        count["out"] += len(job.data)
        keys.append(job.key)
    assert keys == list(range(len(jobs)))
    assert sent == [[0, 1, 2], [3, 4], [5], [6], [7]]  # cut once a chunk reaches 100 bytes
    # Never more than the budget plus one chunk, though the window (2 x 4 chunks) would take all 690 bytes.
    assert max(in_flight) <= 250 + 220, in_flight
