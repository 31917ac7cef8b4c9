"""The AFNOR XP Z12-013 Flow Service (docs/reform.md §3), mounted on the API under ``/flow-service``.

A sub-application of its own (`create`), so that every refusal under ``/flow-service/`` has the contract's
`Error` shape and its routes stay out of Relais's own OpenAPI document; it shares the API's runtime, its
throttle of failed tokens and its processor of uploads (relais/api/app.py mounts it).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from relais.api.flow_service.errors import HANDLERS
from relais.api.flow_service.router import router

SERVICE_NAME = "flow-service"  # the contract's default service name


def create(parent: FastAPI) -> FastAPI:
    app = FastAPI(
        title="AFNOR Flow Service (Relais)",
        openapi_url=None,  # the contract is the official file, not a generated one
        docs_url=None,
        redoc_url=None,
        exception_handlers=HANDLERS,
    )

    class _State:  # the parent's state, read when a request comes (the processor is set after mounting)
        def __getattr__(self, name: str) -> Any:
            return getattr(parent.state, name)

    app.state = _State()  # type: ignore[assignment]
    app.include_router(router)
    return app
