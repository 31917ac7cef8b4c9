"""What the web application answers when a route refuses or an address does not exist: French-first error
pages (error.html) rather than JSON details, and the redirect to /login for a visitor nobody signed in.
`HANDLERS` is given to FastAPI by `relais.web.app.create_app`."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from relais.web import params
from relais.web.routes.common import Refused, ToLogin, maybe_user, render


async def to_login(request: Request, exc: Exception) -> Response:
    """The login page, which comes back to the asked page once signed in."""
    return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)


async def refused(request: Request, exc: Refused) -> Response:
    return render(request, "error.html", maybe_user(request), status=exc.status, key=exc.key, code=exc.status)


async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
    """An address the application does not have: the French-first 404 page, not a JSON detail."""
    if exc.status_code != 404:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    return render(request, "error.html", maybe_user(request), status=404, key="not-found", code=404)


async def bad_param(request: Request, exc: params.BadParam) -> Response:
    """A query parameter that does not parse (relais/web/params.py): a 400 page naming it."""
    user = maybe_user(request)
    return render(request, "error.html", user, status=400, key="bad-param", param=exc.name, code=400)


async def bad_path(request: Request, exc: RequestValidationError) -> Response:
    """A path parameter of the wrong type (an invoice position that is not a number): a 400 page."""
    where = ",".join(str(p) for e in exc.errors() for p in e.get("loc", ())[1:2])
    return render(request, "error.html", maybe_user(request), status=400, key="bad-param", param=where, code=400)


HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    ToLogin: to_login,
    Refused: refused,
    StarletteHTTPException: not_found,
    params.BadParam: bad_param,
    RequestValidationError: bad_path,
}
