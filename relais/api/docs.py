"""The API's interactive documentation (``/docs``, Swagger UI): off by default (issue 19, finding 6).

FastAPI's own ``/docs`` and ``/redoc`` load their scripts and styles from a CDN: a page of the API would
run code fetched from a third party. Relais turns both off; the OpenAPI document stays at
``/openapi.json`` (the API's contract, docs/api/openapi.json) for any viewer one runs oneself.

With ``RELAIS_API_DOCS=1``, ``/docs`` is served only when an installed package ships Swagger UI's assets
(the ``swagger-ui-bundle`` distribution: module ``swagger_ui_bundle``, attribute ``swagger_ui_path``), from
this server, with no inline script. Relais does not depend on such a package: without one, ``/docs`` stays
off and the log says why (``api.docs_unavailable``). ReDoc ships no such package: ``/redoc`` stays off.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles

from relais import log

_log = log.get("relais.api")
PACKAGE = "swagger_ui_bundle"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>
"""
INIT = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});\n'


def swagger_assets() -> Path | None:
    """The folder of Swagger UI's assets in an installed package, if one ships them."""
    try:
        module = importlib.import_module(PACKAGE)
    except ImportError:
        return None
    folder = getattr(module, "swagger_ui_path", None)
    if folder is None or not all((Path(folder) / name).is_file() for name in ASSETS):
        return None
    return Path(folder)


def install(app: FastAPI, *, wanted: bool) -> bool:
    """Serve ``/docs`` when `wanted` and the assets are installed; whether it is served."""
    if not wanted:
        return False
    folder = swagger_assets()
    if folder is None:
        _log.warning(
            "api.docs_unavailable",
            detail=f"RELAIS_API_DOCS is set but no installed package ships Swagger UI's assets (pip package "
            f"swagger-ui-bundle, module {PACKAGE}): /docs stays off rather than load them from a CDN; the "
            "OpenAPI document is at /openapi.json",
        )
        return False
    app.mount("/docs/assets", StaticFiles(directory=folder), name="docs.assets")
    page = PAGE.format(title=f"{app.title} {app.version}")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)

    @app.get("/docs/init.js", include_in_schema=False)
    def docs_init() -> Response:
        return Response(INIT, media_type="text/javascript")

    return True
