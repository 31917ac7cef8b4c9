"""Liveness, readiness and metrics: ``/healthz`` and ``/readyz`` for anyone (relais/health.py), ``/metrics``
for an ops user only (a scraper has no session: RELAIS_WEB_METRICS_ADDRESS, relais/web/metrics_server.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from relais import health, metrics
from relais.web.routes.common import Ops, Site

router = APIRouter()


@router.get("/healthz")
def healthz() -> Response:
    return Response(b'{"status": "ok"}\n', media_type="application/json")


@router.get("/readyz")
def readyz(site: Site) -> Response:
    """Ready or not, and nothing more: what failed (exception texts) goes to the log only (relais/health.py)."""
    found = health.answer("/readyz", lambda: health.readiness(site.rt))
    assert found is not None
    return Response(found[1], status_code=found[0], media_type="application/json")


@router.get("/metrics")
def metrics_page(site: Site, user: Ops) -> Response:
    """Platform-wide counts: the store's (relais/metrics.py); the validation pool's are served by the
    processes that validate (`relais run --watch --metrics-port N`)."""
    body, content_type = metrics.render(site.rt, pool=False)
    return Response(body, media_type=content_type)
