"""An Airflow UI menu link to Relais's "Suivi des flux" web application (`relais web serve`).

Airflow loads it from its plugins folder (scripts/airflow.sh points AIRFLOW__CORE__PLUGINS_FOLDER
here); the link's address is RELAIS_WEB_URL (default http://127.0.0.1:8090/), read by the
api-server when it starts.
"""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin


class RelaisSuiviDesFlux(AirflowPlugin):
    name = "relais_suivi_des_flux"
    external_views = [
        {
            "name": "Suivi des flux (Relais)",
            "href": os.environ.get("RELAIS_WEB_URL", "http://127.0.0.1:8090/"),
            "destination": "nav",
            "category": "browse",
        }
    ]
