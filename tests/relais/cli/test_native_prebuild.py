"""The native rules' generated code is built before the first flow: by `relais rules install`, by a server's
start (a background thread), and a cold `relais validate` says that it is building them (once)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from relais import generate as gen
from relais.cli import main
from validators import schematron
from validators.document import BUILDING_NOTICE, JudgeConfig, build_rules, build_rules_in_background, unbuilt_rules
from validators.native import NativeRunner

FRENCH, ENGLISH = BUILDING_NOTICE.split(" / ")


def _invoice(tmp_path: Path) -> Path:
    path = tmp_path / "invoice.xml"
    path.write_bytes(gen.invoice_xml("ubl", next(gen.plan(1, 3, gen.sample_directory(), seed=1))))
    return path


def test_rules_install_fills_a_cold_cache_then_validate_is_warm(tmp_path, cen_rules_dir):
    cache, home = tmp_path / "cache", tmp_path / "home"
    env = {"RELAIS_NATIVE_CACHE": str(cache), "RELAIS_RULES_DIR": ""}
    runner = CliRunner()
    installed = runner.invoke(main, ["--home", str(home), "rules", "install", str(cen_rules_dir)], env=env)
    assert installed.exit_code == 0, installed.output
    sets = schematron.discover(home / "rules").all()
    assert sets and all(NativeRunner(cache_dir=cache).is_built(rs) for rs in sets)  # every rule set, not only two
    assert unbuilt_rules(JudgeConfig(rules_dir=home / "rules", native_cache=cache)) == []

    warm = runner.invoke(main, ["--home", str(home), "validate", str(_invoice(tmp_path))], env=env)
    assert warm.exit_code == 0, warm.output
    assert FRENCH not in warm.stderr and ENGLISH not in warm.stderr


def test_a_cold_validate_says_it_builds_the_native_rules_once(tmp_path):
    cache, home = tmp_path / "cache", tmp_path / "home"
    env = {"RELAIS_NATIVE_CACHE": str(cache), "RELAIS_RULES_DIR": ""}
    invoice = _invoice(tmp_path)
    runner = CliRunner()
    cold = runner.invoke(main, ["--home", str(home), "validate", str(invoice)], env=env)
    assert cold.exit_code == 0, cold.output
    assert BUILDING_NOTICE in cold.stderr and FRENCH not in cold.stdout  # French first, on stderr
    assert cold.stderr.index(FRENCH) < cold.stderr.index(ENGLISH)
    assert NativeRunner(cache_dir=cache).is_built(schematron.discover(None).ubl)  # what it needed, cached
    again = runner.invoke(main, ["--home", str(home), "validate", str(invoice)], env=env)
    assert again.exit_code == 0 and FRENCH not in again.stderr  # built once
    assert cold.stdout == again.stdout  # the same verdict either way
    official = runner.invoke(main, ["--home", str(home), "validate", "--engine", "official", str(invoice)], env=env)
    assert FRENCH not in official.stderr  # the official engine builds nothing


def test_the_background_build_fills_the_cache_and_one_builder_at_a_time(tmp_path):
    import fcntl

    config = JudgeConfig(native_cache=tmp_path / "cache")
    assert unbuilt_rules(config)  # cold
    (tmp_path / "cache").mkdir()
    with (tmp_path / "cache" / ".build.lock").open("a") as held:  # another process is building: left to it
        fcntl.flock(held, fcntl.LOCK_EX)
        assert build_rules(config) == []
    build_rules_in_background(config).join()
    assert unbuilt_rules(config) == []
    assert build_rules(config) == []  # nothing left to build
    assert unbuilt_rules(JudgeConfig(native_cache=tmp_path / "other", rules_engine="official")) == []
