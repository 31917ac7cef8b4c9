"""Security headers on every answer of the API (issue 19, finding 6), as a plain ASGI middleware (it does
not buffer the streamed uploads nor the downloads).

Every answer: ``X-Content-Type-Options: nosniff`` (a downloaded XML or PDF is never sniffed into HTML),
``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer`` and a ``Content-Security-Policy`` that allows
nothing (``default-src 'none'; frame-ancestors 'none'``: JSON, XML and PDF need no script). Every answer
but the public OpenAPI document and the documentation's static assets: ``Cache-Control: no-store``
(authenticated answers, downloads, refusals and health alike: nothing of them is kept by a cache).
The documentation page, when served (`relais.api.docs`), gets a policy of its own: scripts and styles of
this server only.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "default-src 'none'; frame-ancestors 'none'"
DOCS_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
#: Paths whose answers a cache may keep: public, the same for everyone.
CACHEABLE = ("/openapi.json", "/docs/assets/")


def for_path(path: str) -> dict[str, str]:
    """The security headers of an answer to `path`."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": DOCS_CSP if path == "/docs" or path.startswith("/docs/") else CSP,
    }
    if not any(path == p or (p.endswith("/") and path.startswith(p)) for p in CACHEABLE):
        headers["Cache-Control"] = "no-store"
    return headers


class SecurityHeaders:
    """Adds `for_path`'s headers to every answer (the failures answered 500 outside the middleware stack get
    them from their handler, `relais.api.app`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in for_path(scope.get("path", "")).items()]
        names = {name for name, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": headers + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)
