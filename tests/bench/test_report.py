"""bench/report.py's table: each figure read from its bench's JSON, its verdict against issue 24's target, a
failed bench shown as failed (never left out). Made-up figures: no timing is measured or asserted here."""

from __future__ import annotations

import json

import pytest

from bench import report


def ok(data):
    return {"ok": True, "data": data, "seconds": 1}


def rules(speedups: dict[int, float]) -> dict:
    return {str(n): {"native": 1.0, "official": x} for n, x in speedups.items()}


def smallfiles(seconds: float, files: int = 2000, cpu: float = 2.0) -> list:
    return [{"files": files, "seconds_to_last_return": seconds, "main_cpu_ms_per_file": cpu}]


GOOD = {
    "validate-ubl": ok({"rules_ms": rules({10: 3.5, 100: 2.2, 1000: 1.6, 10000: 1.5}), "judge_ms": {"10000": 900.0}}),
    "validate-cii": ok({"rules_ms": rules({10: 2.9, 100: 2.0, 1000: 1.4, 10000: 1.8})}),
    "smallfiles-singles": ok(smallfiles(30.0)),
    "smallfiles-zips": ok(smallfiles(20.0, cpu=0.4)),
    "smallfiles-10000": ok(smallfiles(61.0, files=10000, cpu=3.1)),
    "pipeline": ok(
        {
            "invoices": 10000,
            "native": {"invoices_per_s": 1200.0, "peak_rss_mb": 999.0},
            "official": {"invoices_per_s": 300.0, "peak_rss_mb": 1500.0},
        }
    ),
    "scale": ok({"scale": [{"workers": 1, "invoices_per_s": 100.0}, {"workers": 2, "invoices_per_s": 179.0}]}),
    "web": ok({"flows": 1_000_000, "routes": [{"route": "/ landing", "server_p95_ms": 120.0}]}),
    "steady-airflow": ok({"latency_p95_s": 2.5, "return_flows": 300, "files": 300, "incidents": 0}),
    "steady-cli": ok({"latency_p95_s": 1.5, "return_flows": 300, "files": 300, "incidents": 0}),
}


def by_figure(results) -> dict[str, report.Row]:
    return {r.figure: r for r in report.rows(results)}


def test_each_target_is_met_or_not_from_the_figures():
    table = by_figure(GOOD)
    verdicts = {f: r.verdict for f, r in table.items()}
    assert verdicts == {
        "rules alone, UBL, 10 lines: native vs Saxon": "met",
        "rules alone, UBL, 100 lines: native vs Saxon": "met",
        "rules alone, UBL, 1,000 lines: native vs Saxon": "met",
        "rules alone, UBL, 10,000 lines: native vs Saxon": "met",  # x1.5 is the target itself
        "rules alone, CII, 10 lines: native vs Saxon": "not met",  # x2.9 < x3
        "rules alone, CII, 100 lines: native vs Saxon": "met",
        "rules alone, CII, 1,000 lines: native vs Saxon": "not met",
        "rules alone, CII, 10,000 lines: native vs Saxon": "met",
        "one 10,000-line UBL invoice, XSD + rules": "met",
        "2,000 one-invoice files vs the same invoices in zips of 500": "met",  # 30 s <= 1.5 x 20 s
        "10,000 one-invoice files, `relais run`": "not met",  # 61 s
        "main-process CPU per one-invoice flow": "met",
        "end to end, 10-line UBL, zips of 500": "met",
        "scale-out, 1 -> 2 `relais run` processes": "not met",  # x1.79
        "landing page, server p95 at 1M flows": "met",
        "rejects page, server p95 at 1M flows": "failed: /rejects not served (no such page, or a redirect)",
        "drop -> return flow at 10 files/s, under the scheduler": "met",
    }
    assert table["rules alone, CII, 10 lines: native vs Saxon"].this_run.startswith("x2.9")
    assert table["end to end, 10-line UBL, zips of 500"].official == "Saxon: 300 inv/s, 1,500 MB"
    assert table["2,000 one-invoice files vs the same invoices in zips of 500"].official == "zips of 500: 20.0 s"
    assert table["scale-out, 1 -> 2 `relais run` processes"].official == "1 process: 100 inv/s"


def test_a_failed_bench_is_shown_failed_with_its_reason_never_hidden():
    results = {**GOOD, "pipeline": {"ok": False, "reason": "exit 1: boom", "seconds": 3}}
    del results["web"]
    table = by_figure(results)
    assert len(table) == len(by_figure(GOOD))  # every figure still has its row
    e2e = table["end to end, 10-line UBL, zips of 500"]
    assert (e2e.this_run, e2e.verdict) == ("—", "failed: pipeline: exit 1: boom")
    assert table["landing page, server p95 at 1M flows"].verdict.startswith("not run")
    text = report.render(report.rows(results), {"profile": "quick", "cpus": 2})
    assert "| end to end, 10-line UBL, zips of 500 | — | >= 1,000 inv/s, RSS <= 1 GB | — | failed: pipeline" in text
    assert text.count("\n|") == 2 + len(table)  # one table: its head, its rule, a line per figure


def test_a_figure_the_bench_did_not_print_fails_its_row_only():
    results = {**GOOD, "smallfiles-singles": ok([{"files": 2000, "seconds_to_last_return": 30.0}])}
    table = by_figure(results)
    assert table["main-process CPU per one-invoice flow"].verdict == "failed: figure 0.main_cpu_ms_per_file not printed"
    assert table["2,000 one-invoice files vs the same invoices in zips of 500"].verdict == "met"


def test_the_quick_profile_extrapolates_ten_thousand_files_and_says_so():
    results = {k: v for k, v in GOOD.items() if k != "smallfiles-10000"}
    results["smallfiles-singles"] = ok(smallfiles(2.5, files=500))
    row = by_figure(results)["10,000 one-invoice files, `relais run`"]
    assert (row.this_run, row.verdict) == ("50 s (extrapolated from 500 files)", "met")
    results["steady-airflow"] = ok({"latency_p95_s": 2.0, "return_flows": 299, "files": 300, "incidents": 1})
    steady = by_figure(results)["drop -> return flow at 10 files/s, under the scheduler"]
    assert steady.verdict == "not met"  # a file never returned fails it, whatever the p95


def test_last_json_takes_the_figures_line():
    assert report.last_json('starting\n{"a": 1}\nnot json {\n') == {"a": 1}
    assert report.last_json("[1, 2]") == [1, 2]
    with pytest.raises(ValueError):
        report.last_json("no figures here\n")


def test_the_profiles_name_benches_that_exist():
    for profile in ("quick", "full"):
        steps = report.suite(profile, report.ROOT / "var" / "bench", None)
        assert {"validate-ubl", "smallfiles-zips", "pipeline", "web", "steady-airflow"} <= {s.name for s in steps}
        for s in steps:
            assert (report.ROOT / "bench" / s.argv[0]).is_file()


def test_render_from_saved_results_and_plots(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "latencies").mkdir()
    (tmp_path / "latencies" / "steady-airflow.txt").write_text("1.0\n2.0\n2.5\n")
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps({"meta": {"profile": "full", "cpus": 2}, "results": GOOD}))
    assert report.main(["--from", str(saved), "--out", str(tmp_path)]) == 0
    assert "(full profile)" in (tmp_path / "report.md").read_text()
    for png in ("rules_cost_per_lines.png", "smallfiles_vs_batches.png", "latency.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
