"""bench/soak.py's verdicts over its windows: flat means no window more than 20 % above the first steady one;
an incident, a file without its return flow, a file left in a drop zone or an open flow fails the run.
Made-up windows: nothing is run or timed here."""

from __future__ import annotations

from bench import soak

END_CLEAN = {"incidents": 0, "missing_returns": 0, "left_in_dropzones": 0, "open_flows": 0}


def window(p95, rss, files_in=100):
    return {"p95_s": p95, "rss_mb": rss, "files_in": files_in}


def test_flat_is_measured_against_the_first_steady_window():
    assert soak.steady_index(2) == 0 and soak.steady_index(5) == 1  # the first of several windows warms up
    assert soak.flat([9.0, 2.0, 2.4, 2.3]) == (True, 2.0)  # the warm-up is not the reference, 2.4 = +20 %
    assert soak.flat([1.0, 2.0, 2.41]) == (False, 2.0)
    assert soak.flat([2.0, None, 2.0]) == (False, None)  # no figure in the reference window: not shown flat
    assert soak.flat([]) == (False, None)


def test_verdicts_of_a_clean_run_and_of_each_failure():
    windows = [window(5.0, 900), window(1.0, 1000), window(1.1, 1100), window(None, 1050, files_in=0)]
    assert soak.verdicts(windows, END_CLEAN) == {
        "no_incident": True,
        "p95_flat": True,  # the drain's window (nothing dropped) has no p95 and is left out
        "rss_flat": True,
        "nothing_left_behind": True,
    }
    grown = [*windows[:-1], window(1.0, 1300)]
    assert soak.verdicts(grown, END_CLEAN)["rss_flat"] is False
    for key in ("missing_returns", "left_in_dropzones", "open_flows"):
        assert soak.verdicts(windows, {**END_CLEAN, key: 1})["nothing_left_behind"] is False
    assert soak.verdicts(windows, {**END_CLEAN, "incidents": 2})["no_incident"] is False


def test_quantiles_and_process_kinds():
    assert soak.quantiles([]) == (None, None, None)
    assert soak.quantiles([3.0]) == (3.0, 3.0, 3.0)
    p50, p95, top = soak.quantiles([float(x) for x in range(1, 101)])
    assert (p50, top) == (50.5, 100.0) and 94 < p95 <= 96
    assert soak.kind(["/venv/bin/python", "-m", "validators.pool.worker"]) == "validation worker"
    assert soak.kind(["airflow", "scheduler"]) == "scheduler"
    assert soak.kind(["/venv/bin/airflow", "dag-processor"]) == "dag-processor"
