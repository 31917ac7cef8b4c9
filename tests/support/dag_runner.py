"""Run the `relais_flows` DAG with Airflow's `dag.test()`, once per RELAIS_HOME given.

Used by tests/e2e/test_airflow.py in a subprocess, so that Airflow reads its
configuration (AIRFLOW_HOME, AIRFLOW__CORE__*) from an environment set before
it is imported, and keeps its global state (ORM, logging, in-process Execution
API server) out of the pytest worker::

    python tests/support/dag_runner.py RESULT.json RELAIS_HOME [RELAIS_HOME ...]

The Airflow metadata DB must be migrated already. Each run's outcome is written
to RESULT.json as a list of {"state", "run_id", "seconds", "task_instances": [[task_id, map_index,
state], ...], "xcom": {task_id: value, "task_id[]": [value of each mapped instance]}, "labels": [the
mapped instances' rendered labels]}.
Exit status 0 even when a run failed: the test asserts on the states.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

DAG_ID = "relais_flows"


def run_dag(dag, relais_home: str) -> dict:
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    os.environ["RELAIS_HOME"] = relais_home  # tasks run in this process and read it via Settings.from_env
    start = time.perf_counter()
    dr = dag.test()
    seconds = time.perf_counter() - start
    with create_session() as session:
        tis = session.scalars(
            select(TaskInstance).where(TaskInstance.dag_id == DAG_ID, TaskInstance.run_id == dr.run_id)
        ).all()
        xcom: dict = {}
        for x in session.scalars(
            select(XComModel).where(
                XComModel.dag_id == DAG_ID, XComModel.run_id == dr.run_id, XComModel.key == "return_value"
            )
        ):
            value = XComModel.deserialize_value(x)
            if x.map_index < 0:
                xcom[x.task_id] = value
            else:  # mapped instances: {task_id: [value of map index 0, 1, ...]}
                xcom.setdefault(f"{x.task_id}[]", []).append((x.map_index, value))
        for key in [k for k in xcom if k.endswith("[]")]:
            xcom[key] = [v for _, v in sorted(xcom[key])]
        labels = {ti.map_index: ti.rendered_map_index for ti in tis if ti.map_index >= 0}
        return {
            "state": str(dr.state),
            "run_id": dr.run_id,
            "seconds": round(seconds, 2),
            "task_instances": sorted([ti.task_id, ti.map_index, str(ti.state)] for ti in tis),
            "xcom": xcom,
            "labels": [labels[i] for i in sorted(labels)],
        }


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    out, homes = Path(argv[0]), argv[1:]
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    if bag.import_errors or DAG_ID not in bag.dags:
        print(f"cannot load {DAG_ID}: {bag.import_errors}", file=sys.stderr)
        return 1
    dag = bag.dags[DAG_ID]
    results = [run_dag(dag, home) for home in homes]
    out.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
