"""scripts/bootstrap.sh: `demo` installs Relais alone, `test` and a plain call everything; one stamp per set.

The script runs for real on a copy of the project's files whose venv tools are stubs that log their
arguments (pip, relais), with `dpkg` stubbed on PATH: no network, no package is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALL = "-e .[dev,airflow,postgres]"
ALONE = "-e ."


def _stub(path: Path, body: str) -> None:
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "relais"
    (root / "scripts").mkdir(parents=True)
    for name in ("scripts/bootstrap.sh", "scripts/apt-packages.txt", "pyproject.toml", "constraints.txt"):
        shutil.copyfile(ROOT / name, root / name)
    _stub(root / "scripts" / "test.sh", 'echo "test.sh $*"')
    venv = root / ".venv" / "bin"
    venv.mkdir(parents=True)
    _stub(venv / "python", "exit 0")
    _stub(venv / "pip", f'echo "$*" >> {tmp_path}/pip.log')
    _stub(venv / "relais", 'echo "relais $*"')
    tools = tmp_path / "tools"
    tools.mkdir()
    _stub(tools / "dpkg", f'echo "$*" >> {tmp_path}/dpkg.log')  # every package "installed"
    return root


def bootstrap(project: Path, *args: str) -> tuple[str, list[str], list[str]]:
    """Run it; (its stdout, the pip calls and the dpkg calls it made)."""
    logs = [project.parent / "pip.log", project.parent / "dpkg.log"]
    for log in logs:
        log.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAIS_", "AIRFLOW_"))}
    env["PATH"] = f"{project.parent / 'tools'}{os.pathsep}{env['PATH']}"
    done = subprocess.run(
        ["bash", str(project / "scripts" / "bootstrap.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    pip, dpkg = (log.read_text().splitlines() if log.exists() else [] for log in logs)
    return done.stdout, pip, dpkg


def _installs(calls: list[str]) -> list[str]:
    assert all(c.startswith("install -q --disable-pip-version-check -c constraints.txt ") for c in calls), calls
    return [c.split(" constraints.txt ", 1)[1] for c in calls]


def test_demo_installs_relais_alone_then_test_adds_the_extras(project):
    out, pip, dpkg = bootstrap(project, "demo", "--invoices", "3")
    assert out == "relais demo --invoices 3\n"
    assert _installs(pip) == [ALONE]
    assert dpkg == []  # no apt package for the demo (chromium, openssl... are the tests')
    assert bootstrap(project, "demo")[1] == []  # installed: its stamp holds

    out, pip, dpkg = bootstrap(project, "test", "-k", "x")
    assert out == "test.sh -k x\n"
    assert _installs(pip) == [ALL]  # the demo's install is not taken for a full one
    lines = (ROOT / "scripts/apt-packages.txt").read_text().splitlines()
    packages = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert {"curl", "jq", "openssh-client"} <= set(packages)  # the README's walkthrough, ssh-keygen
    assert dpkg == [f"-s {p}" for p in packages]  # each checked (and installed when missing)
    assert bootstrap(project, "test")[1] == []
    assert bootstrap(project, "demo")[1] == []  # a full install serves the demo


def test_a_changed_pin_installs_again_per_set(project):
    assert _installs(bootstrap(project)[1]) == [ALL]  # plain call: everything, runs nothing
    with (project / "constraints.txt").open("a") as f:
        f.write("# another pin\n")
    assert _installs(bootstrap(project, "demo")[1]) == [ALONE]
    assert bootstrap(project, "demo")[1] == []
    assert _installs(bootstrap(project)[1]) == [ALL]
    assert bootstrap(project, "test")[1] == []
