"""The validation worker pool: same verdicts as in process, ordered, and fail closed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from flows.domain.errors import Incident
from flows.domain.model import Container
from relais import generate as gen
from validators.document import JudgeConfig
from validators.pool import Job, PoolConfig, ValidationPool

XSD_ONLY = JudgeConfig(business_rules=False)
ROOT = Path(__file__).resolve().parents[2]


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
    assert [(v.syntax, [e.rule for e in v.errors]) for _, v in pooled] == [
        (v.syntax, [e.rule for e in v.errors]) for v in inline
    ]
    assert any(v.rejected for _, v in pooled) and not all(v.rejected for _, v in pooled)


def test_small_flows_are_judged_in_process():
    p = ValidationPool(PoolConfig(judge=XSD_ONLY, workers=2))
    try:
        out = list(p.judge_all(_jobs(3), expected=3))
        assert len(out) == 3 and p.state()["running"] == 0 and not _workers()
    finally:
        p.close()


def test_a_document_over_its_time_budget_is_an_incident():
    p = ValidationPool(PoolConfig(judge=XSD_ONLY, workers=1, chunk_size=1, inline_below=0, seconds_per_document=0.0005))
    try:
        with pytest.raises(Incident, match="took more than"):
            list(p.judge_all(_jobs(4, lines=2000, invalid=0), expected=4))
        assert p.state()["running"] == 0 and not _workers()  # killed; the next flow gets a fresh pool
    finally:
        p.close()


def test_a_worker_out_of_memory_is_an_incident_not_a_verdict():
    p = ValidationPool(PoolConfig(judge=XSD_ONLY, workers=1, chunk_size=1, inline_below=0, worker_memory_mb=160))
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
        "from flows.domain.model import Container\n"
        "data = gen.invoice_xml('ubl', next(gen.plan(1, 30000, gen.sample_directory())))\n"
        "j = DocumentJudge(JudgeConfig(business_rules=False)); j.judge(data[:100], Container.XML)\n"
        "used = int(next(l for l in open('/proc/self/status') if l.startswith('VmSize:')).split()[1]) << 10\n"
        "cap = used + (len(data) >> 1)  # half the document's size more: its tree needs many times that\n"
        "resource.setrlimit(resource.RLIMIT_AS, (cap, cap))\n"
        "try:\n"
        "    v = j.judge(data, Container.XML)\n"
        "    print('VERDICT', [e.rule for e in v.errors])\n"
        "except MemoryError:\n"
        "    print('MEMORYERROR')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.strip() == "MEMORYERROR", out  # the cap fired, and it is an incident, not a verdict


def _workers() -> set[int]:
    """The pids of this process's live validation workers (``python -P -m validators.pool.worker``), read from
    /proc (a test closes its pool: those seen are the pool's under test)."""
    found: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue  # gone meanwhile
            if b"validators.pool.worker" in cmdline and state != "Z":
                found.add(int(pid))
    return found


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not (or no longer) a child of this process: no zombie
    return False


def test_a_killed_worker_is_an_incident_and_the_next_flow_gets_fresh_workers():
    p = ValidationPool(PoolConfig(judge=XSD_ONLY, workers=2, chunk_size=1, inline_below=0))
    try:
        flow = p.judge_all(_jobs(30, lines=200), expected=30)
        next(flow)
        pids = _workers()
        assert len(pids) == 2 and p.state()["running"] == 2
        os.kill(min(pids), signal.SIGKILL)
        with pytest.raises(Incident, match="died"):
            list(flow)
        assert p.state()["running"] == 0
        assert all(_reaped(pid) for pid in pids)
        assert not [t for t in threading.enumerate() if t.name.startswith("relais-validation")]
        out = list(p.judge_all(_jobs(8), expected=8))
        assert [j.key for j, _ in out] == list(range(1, 9))
        assert len(_workers()) == 2 and not _workers() & pids
    finally:
        p.close()
    assert p.state()["running"] == 0 and not _workers()


def test_an_error_raised_in_a_worker_keeps_its_type_and_the_workers_stay():
    p = ValidationPool(PoolConfig(judge=XSD_ONLY, workers=1, chunk_size=1, inline_below=0))
    try:
        with pytest.raises(TypeError) as inline:
            p.local.judge(None, Container.XML)
        with pytest.raises(TypeError) as pooled:
            list(p.judge_all(iter([Job(1, None, Container.XML, "x.xml")]), expected=1))
        assert str(pooled.value) == str(inline.value)
        pids = _workers()
        assert len(list(p.judge_all(_jobs(4), expected=4))) == 4 and _workers() == pids
    finally:
        p.close()


def _run_parent(script: str, tmp_path: Path) -> str:
    main = tmp_path / "airflow"  # like the `airflow` entry script a task runs under
    main.write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + script)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, str(main)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


JUDGE_20 = """
def judge_20():
    from relais import generate as gen
    from validators.document import JudgeConfig
    from validators.pool import Job, PoolConfig, ValidationPool

    recipients = gen.sample_directory()
    jobs = [Job(i, gen.document("cii", spec)[1], None, f"{i}.xml")
            for i, spec in enumerate(gen.plan(20, 2, recipients, seed=3), 1)]
    pool = ValidationPool(PoolConfig(judge=JudgeConfig(business_rules=False), workers=2, chunk_size=4,
                                     inline_below=0))
    try:
        return sum(1 for _ in pool.judge_all(iter(jobs), expected=len(jobs)))
    finally:
        pool.close()
"""


def test_workers_do_not_depend_on_how_the_parent_was_started(tmp_path):
    """An Airflow task's __main__ (the `airflow` script) must never run again in a worker."""
    out = _run_parent(
        "if __name__ != '__main__':\n"
        "    raise RuntimeError('this __main__ script ran again in a worker')\n"
        "import os\n"
        "os.environ['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'] = 'airflow-db-not-allowed:///'\n"
        + JUDGE_20
        + "print('VERDICTS', judge_20())\n",
        tmp_path,
    )
    assert "VERDICTS 20" in out, out


def test_a_daemonic_parent_can_use_the_pool(tmp_path):
    """Celery's prefork workers are daemonic processes, which multiprocessing refuses to give children."""
    out = _run_parent(
        JUDGE_20 + "def child(queue):\n"
        "    import multiprocessing\n"
        "    assert multiprocessing.current_process().daemon\n"
        "    try:\n"
        "        queue.put(f'VERDICTS {judge_20()}')\n"
        "    except BaseException as e:\n"
        "        queue.put(f'ERROR {e!r}')\n"
        "if __name__ == '__main__':\n"
        "    import multiprocessing\n"
        "    ctx = multiprocessing.get_context('fork')\n"
        "    queue = ctx.Queue()\n"
        "    p = ctx.Process(target=child, args=(queue,), daemon=True)\n"
        "    p.start()\n"
        "    print(queue.get(timeout=240))\n"
        "    p.join()\n",
        tmp_path,
    )
    assert "VERDICTS 20" in out, out
