"""The validation worker pool: same verdicts as in process, ordered, and fail closed."""

from __future__ import annotations

import pytest

from flows.errors import Incident
from flows.model import Container
from relais import generate as gen
from validators.document import JudgeConfig
from validators.pool import Job, PoolConfig, ValidationPool

XSD_ONLY = JudgeConfig(business_rules=False)


def _jobs(n: int, lines: int = 2, invalid: float = 0.2):
    recipients = gen.sample_directory()
    for i, spec in enumerate(gen.plan(n, lines, recipients, invalid_ratio=invalid, seed=3), 1):
        fmt = "ubl" if i % 2 else "cii"
        name, data = gen.document(fmt, spec)
        yield Job(i, data, None, name)


@pytest.fixture
def pool():
    p = ValidationPool(PoolConfig(judge=XSD_ONLY, workers=2, chunk_size=4, inline_below=0))
    yield p
    p.close()


def test_pooled_verdicts_match_in_process_ones_in_order(pool):
    jobs = list(_jobs(40))
    pooled = list(pool.judge_all(iter(jobs), expected=len(jobs)))
    inline = [pool.local.judge(j.data, None, entry_name=j.entry_name) for j in jobs]
    assert [j.key for j, _ in pooled] == list(range(1, 41))
    assert [(v.syntax, [e.rule for e in v.errors]) for _, v in pooled] == \
        [(v.syntax, [e.rule for e in v.errors]) for v in inline]
    assert any(v.rejected for _, v in pooled) and not all(v.rejected for _, v in pooled)


def test_small_flows_are_judged_in_process():
    p = ValidationPool(PoolConfig(judge=XSD_ONLY, workers=2))
    try:
        out = list(p.judge_all(_jobs(3), expected=3))
        assert len(out) == 3 and p._executor is None
    finally:
        p.close()


def test_a_document_over_its_time_budget_is_an_incident():
    p = ValidationPool(PoolConfig(judge=XSD_ONLY, workers=1, chunk_size=1, inline_below=0,
                                  seconds_per_document=0.0005))
    try:
        with pytest.raises(Incident, match="took more than"):
            list(p.judge_all(_jobs(4, lines=2000, invalid=0), expected=4))
        assert p._executor is None  # killed; the next flow gets a fresh pool
    finally:
        p.close()


def test_a_worker_out_of_memory_is_an_incident_not_a_verdict():
    p = ValidationPool(PoolConfig(judge=XSD_ONLY, workers=1, chunk_size=1, inline_below=0,
                                  worker_memory_mb=160))
    try:
        small = list(p.judge_all(_jobs(2, invalid=0), expected=2))
        assert all(not v.rejected for _, v in small)  # the capped worker works for normal invoices
        recipients = gen.sample_directory()
        big = gen.invoice_xml("ubl", next(gen.plan(1, 30000, recipients)))  # its tree needs > the cap
        with pytest.raises(Incident, match="memory|died"):
            list(p.judge_all(iter([Job(1, big, Container.XML, "big.xml")]), expected=1))
    finally:
        p.close()


def test_in_process_memory_failure_is_not_reported_as_malformed_xml():
    """libxml2's out-of-memory error must never become an RLS-T03 verdict."""
    import subprocess
    import sys

    code = (
        "import resource\n"
        "from relais import generate as gen\n"
        "from validators.document import DocumentJudge, JudgeConfig\n"
        "from flows.model import Container\n"
        "data = gen.invoice_xml('ubl', next(gen.plan(1, 30000, gen.sample_directory())))\n"
        "j = DocumentJudge(JudgeConfig(business_rules=False)); j.judge(data[:100], Container.XML)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (140 << 20, 140 << 20))\n"
        "try:\n"
        "    v = j.judge(data, Container.XML)\n"
        "    print('VERDICT', [e.rule for e in v.errors])\n"
        "except MemoryError:\n"
        "    print('MEMORYERROR')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "MEMORYERROR" in out or "VERDICT []" in out, out
