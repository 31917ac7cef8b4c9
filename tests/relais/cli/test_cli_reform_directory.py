"""`relais directory import --reform FILE` and `relais directory versions --reform`."""

from __future__ import annotations

from click.testing import CliRunner

from relais.cli import main


def _cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_import_reform_directory(tmp_path):
    home, path = tmp_path / "home", tmp_path / "reforme.csv"
    path.write_text("addressingIdentifier;platformId;status\n702042755;0042;Enabled\n702042755_X;0042;Disabled\n")
    result = _cli("--home", home, "directory", "import", "--reform", path)
    assert result.exit_code == 0, result.output
    assert "annuaire de la réforme version" in result.stdout and ": 2 lignes" in result.stdout
    versions = _cli("--home", home, "directory", "versions", "--reform").stdout.splitlines()
    assert len(versions) == 1 and versions[0].endswith("2 lignes")
    bad = tmp_path / "bad.csv"
    bad.write_text("addressingIdentifier;platformId;status\n12;0042;Enabled\n")
    result = _cli("--home", home, "directory", "import", "--reform", bad)
    assert result.exit_code == 1 and "ligne 2 : identifiant d'adressage invalide '12'" in result.stderr
    assert len(_cli("--home", home, "directory", "versions", "--reform").stdout.splitlines()) == 1
