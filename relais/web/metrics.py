"""`/metrics` of the web application: the store's metrics (relais/metrics.py); the validation pool's
are served by the processes that validate (`relais run --watch --metrics-port N`)."""

from __future__ import annotations

from relais import metrics
from relais.compose import Runtime


def render(rt: Runtime) -> tuple[bytes, str]:
    return metrics.render(rt, pool=False)
