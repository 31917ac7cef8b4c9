"""The Airflow UI's menu link to the "Suivi des flux" web application (dags/plugins/relais_suivi.py), as
Airflow's own plugin manager loads it from the plugins folder scripts/airflow.sh sets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_airflow_lists_the_link_to_the_web_application(tmp_path):
    pytest.importorskip("airflow")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RELAIS_"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(ROOT / "dags" / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        RELAIS_WEB_URL="https://flux.example.org/",
    )
    done = subprocess.run(
        [sys.executable, "-m", "airflow", "plugins", "-o", "json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    plugins = json.loads(done.stdout[done.stdout.index("[") :])
    [plugin] = [p for p in plugins if p["name"] == "relais_suivi_des_flux"]
    assert plugin["external_views"] == [
        {
            "name": "Suivi des flux (Relais)",
            "href": "https://flux.example.org/",
            "destination": "nav",
            "category": "browse",
        }
    ]
