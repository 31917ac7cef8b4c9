"""README.md's "First real set-up" runs as written: its ```sh blocks, in order, in one bash.

The blocks of that section (up to the next `## ` heading) are joined into one script run with
`set -euo pipefail` in an empty folder, with this venv's `relais` first on PATH, nothing of the
caller's RELAIS_* settings, and API_PORT set to a free port. Then what a newcomer would look at is
checked: the integration report, the status return flow carrying the recipient's status, the users,
the token, the downloaded invoice, and the API server stopped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lxml import etree

from flows.returns import report as returnflow
from tests.support.waiting import wait_until

pytestmark = pytest.mark.xdist_group("readme_walkthrough")  # one worker: the walkthrough runs once

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## First real set-up"
BIN = Path(sys.executable).parent
TIMEOUT = 180  # seconds: a hang, not a slow machine (the walkthrough takes ~20 s on 2 idle cores)


def section_blocks(readme: str, heading: str = SECTION) -> list[str]:
    """The ```sh blocks between `heading` and the next heading of the same level."""
    lines = readme.splitlines()
    start = lines.index(heading) + 1
    level = heading.split(" ", 1)[0] + " "
    end = next((i for i in range(start, len(lines)) if lines[i].startswith(level)), len(lines))
    blocks: list[str] = []
    current: list[str] | None = None
    other = False  # inside a block that is not ```sh (```text, ```toml...)
    for line in lines[start:end]:
        fence = line.strip()
        if other:
            other = fence != "```"
        elif current is not None:
            if fence == "```":
                blocks.append("\n".join(current))
                current = None
            else:
                current.append(line)
        elif fence == "```sh":
            current = []
        elif fence.startswith("```"):
            other = True
    assert current is None, "an unclosed ```sh block"
    return blocks


def test_section_blocks_are_found_between_headings():
    text = "# T\n## A\n```sh\nx\n```\n### sub\n```sh\ny\n```\n```text\nz\n```\n## B\n```sh\nw\n```\n"
    assert section_blocks(text.replace("```text", "```"), "## A") == ["x", "y"]
    assert section_blocks(text, "## A") == ["x", "y"]
    with pytest.raises(ValueError):
        section_blocks(text, "## Missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory):
    """Run the section once: (folder, port, completed process, seconds)."""
    for tool in ("curl", "jq"):  # scripts/apt-packages.txt: bootstrap.sh installs them
        assert shutil.which(tool), f"{tool} is needed by the README's walkthrough (scripts/apt-packages.txt)"
    blocks = section_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 10, blocks
    folder = tmp_path_factory.mktemp("first-setup")
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"
    script += "".join(f"\necho '### block {n}'\n{block}\n" for n, block in enumerate(blocks, 1))
    (folder / "walkthrough.sh").write_text(script)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", API_PORT=str(port))
    t0 = time.monotonic()
    proc = subprocess.Popen(
        ["bash", "walkthrough.sh"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: nothing is left running whatever happens
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the walkthrough took over {TIMEOUT} s\n{out[-3000:]}\n{err[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return folder, port, done, time.monotonic() - t0


def test_the_walkthrough_runs_as_written(walkthrough):
    folder, port, proc, seconds = walkthrough
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
    print(f"walkthrough: {seconds:.1f} s")  # ~20 s on 2 idle cores; TIMEOUT guards against a hang
    # `relais partners` exited 0 (a bad partner file exits 1), and `relais run` showed the flow it made
    assert "op-a" in proc.stdout and "CPP0000000001" in proc.stdout
    assert re.search(r'^\{"status": ?"ready"\}', proc.stdout, re.M)  # the API answered before being used
    # the API server was stopped by the last block
    wait_until(lambda: not _listening(port), 10, "the API server's port to be closed")


def _statuses(path: Path) -> list[tuple[str, str, str, str]]:
    """(invoice id, IdStatut, LibelleStatut, Acteur or '') of each CPPFactureStatut of a return flow."""
    root = etree.parse(str(path)).getroot()
    return [
        (
            e.findtext("IdFacture"),
            e.findtext("DonneesStatut/IdStatut"),
            e.findtext("DonneesStatut/LibelleStatut"),
            e.findtext("DonneesStatut/Acteur") or "",
        )
        for e in root.iter("CPPFactureStatut")
    ]


def test_the_partner_got_its_integration_report(walkthrough):
    folder, _, proc, _ = walkthrough
    assert proc.returncode == 0
    out = folder / "var/first-setup/relais/dropzones/op-a/out"
    (report,) = sorted(out.glob("CR_*.xml"))
    assert report.name == "CR_CPP0000000001_IN_INTEGRE_PARTIEL.xml"
    returnflow.validate(report)
    root = etree.parse(str(report)).getroot()
    assert root.findtext(".//NbFactures") == "10"
    statuses = _statuses(report)
    rejected = [s for s in statuses if s[1] == "04"]
    assert len(statuses) == 10 and 1 <= len(rejected) < 10
    assert root.findtext(".//NbFacturesRejetees") == str(len(rejected))
    assert f"<NbFacturesRejetees>{len(rejected)}</NbFacturesRejetees>" in proc.stdout  # what the grep showed
    assert "<CodeErreur>RLS-R0" in proc.stdout


def test_the_sender_got_the_recipients_status(walkthrough):
    folder, _, proc, _ = walkthrough
    assert proc.returncode == 0
    work = folder / "var/first-setup"
    out = work / "relais/dropzones/op-a/out"
    (invoice,) = [p.stem for p in work.glob("CPP*.xml")]  # the invoice the recipient downloaded
    delivered = list((work / "relais/delivery").glob(f"*/*/{invoice}.xml"))
    assert [p.read_bytes() for p in delivered] == [(work / f"{invoice}.xml").read_bytes()]
    status_flows = sorted(out.glob("ST*.xml"))
    assert len(status_flows) == 2  # 03 after the first run, 07 after the second
    for path in status_flows:
        returnflow.validate(path)
    assert {s[1] for s in _statuses(status_flows[0])} == {"03"}
    assert _statuses(status_flows[1]) == [(invoice, "07", "SERVICE_FAIT", "DESTINATAIRE")]
    start = proc.stdout.index('{"status":"SERVICE_FAIT"')  # curl's output ends with no newline
    answer = json.JSONDecoder().raw_decode(proc.stdout, start)[0]
    assert (answer["code"], answer["previous"], answer["actor"]) == ("07", "03", "recipient")  # the API's answer
    assert "<LibelleStatut>SERVICE_FAIT</LibelleStatut>" in proc.stdout  # what the last grep showed


def test_users_and_token_were_made(walkthrough):
    folder, _, proc, _ = walkthrough
    assert proc.returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
    env["RELAIS_HOME"] = str(folder / "var/first-setup/relais")
    relais = str(BIN / "relais")
    users = subprocess.run([relais, "users", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert users.returncode == 0, users.stderr
    assert re.search(r"^alice +ops\b", users.stdout, re.M), users.stdout
    tokens = subprocess.run([relais, "api", "token", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert tokens.returncode == 0, tokens.stderr
    siret = sorted(p.name for p in (folder / "var/first-setup/relais/delivery").iterdir())[0]
    assert f"recipient:{siret}" in tokens.stdout and tokens.stdout.count("recipient:") == 1
