"""The security headers of every answer of the web application, and whether its cookies are Secure.

`SecurityHeaders` is a pure ASGI middleware (it touches only the ``http.response.start`` message, so
streamed downloads stay streamed). Every answer gets:

- ``Content-Security-Policy``: the project's own scripts, styles and images only (``'self'``; charts are
  inline SVG with presentation attributes, no ``style`` attribute; ``data:`` images allowed), no inline
  script or handler, no framing, forms posted to this site only (and to the OpenID Connect provider when
  one is configured), no ``<base>``;
- ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin``
  (a route that sets a stricter referrer policy keeps it);
- ``Cache-Control: no-store`` on every page and download (pages show a user's flows, downloads their
  files), but the static assets under ``/static/``.

`secure_cookies` decides whether the session cookie is ``Secure``: RELAIS_WEB_SECURE_COOKIES when set,
else on, unless the server listens on a loopback address (plain HTTP on the machine itself: a warning
is logged, since a browser does not send a Secure cookie over plain HTTP).

>>> csp(None).split("; ")[:3]
["default-src 'self'", "script-src 'self'", "style-src 'self'"]
>>> "form-action 'self' https://idp.example:8443;" in csp("https://idp.example:8443/realms/x")
True
>>> secure_cookies("0.0.0.0", {}), secure_cookies("::1", {"RELAIS_WEB_SECURE_COOKIES": "1"})
(True, True)
>>> secure_cookies("relais.example", {"RELAIS_WEB_SECURE_COOKIES": "false"})
False
>>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("[::1]"), is_loopback("192.0.2.10")
(True, True, True, False)

(On a loopback address with no setting it is off, with the warning in the log:
tests/relais/web/test_web_headers.py::test_secure_cookies_by_default_but_on_loopback.)
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from relais import log

_log = log.get("relais.web")

ASGIApp = Any  # (scope, receive, send) -> awaitable

_FIXED = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
)


def csp(oidc_issuer: str | None) -> str:
    """The Content-Security-Policy; `oidc_issuer` (its origin) may receive form posts."""
    form_action = "'self'"
    if oidc_issuer:
        parts = urlsplit(oidc_issuer)
        if parts.scheme in ("http", "https") and parts.netloc:
            form_action += f" {parts.scheme}://{parts.netloc}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"frame-ancestors 'none'; form-action {form_action}; base-uri 'none'; object-src 'none'"
    )


class SecurityHeaders:
    """Adds the headers above to every HTTP answer of `app` (the ones it sets itself stay)."""

    def __init__(self, app: ASGIApp, oidc_issuer: str | None = None) -> None:
        self.app = app
        self.policy = csp(oidc_issuer).encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                add = [(b"content-security-policy", self.policy), *_FIXED, (b"referrer-policy", b"same-origin")]
                if not static:
                    add.append((b"cache-control", b"no-store"))
                headers += [(k, v) for k, v in add if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name the server listens on) is only reachable from this machine."""
    if host.strip("[]").lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def secure_cookies(host: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether the session cookie is Secure for a server listening on `host` (see above)."""
    env = os.environ if env is None else env
    setting = env.get("RELAIS_WEB_SECURE_COOKIES", "").strip().lower()
    if setting:
        return setting not in ("0", "false", "no", "off")
    if is_loopback(host):
        _log.warning(
            "web.cookies_not_secure",
            host=host,
            detail="listening on a loopback address over plain HTTP: session cookies are sent without Secure"
            " (set RELAIS_WEB_SECURE_COOKIES=1 behind a TLS proxy on this machine)",
        )
        return False
    return True
