"""Which callback URLs a webhook may have (checked when it is created and again before each post).

An ``https`` URL with a host name or a public address; no credentials in it, no fragment, at most 2048
characters, nothing but printable ASCII. A literal private, loopback, link-local or reserved address is
refused (a webhook must not make Relais call its own network); ``http://127.0.0.1[:port]/...`` only when
``RELAIS_WEBHOOK_ALLOW_LOOPBACK_HTTP=1`` (tests, a local receiver). A host name is not resolved here
**[choice]**: the network's egress rules are the deployment's.

>>> problem("https://hooks.example.com/relais?x=1"), problem("http://127.0.0.1:8080/h", allow_loopback=True)
(None, None)
>>> problem("http://hooks.example.com/h"), problem("https://user:pw@example.com/h"), problem("https://10.0.0.1/h")
('the callback URL must use https', 'the callback URL must not carry credentials', 'the callback URL must not be a private or reserved address')
>>> problem("file:///etc/passwd"), problem("https:///nohost"), problem("http://127.0.0.1/h")
('the callback URL must use https', 'the callback URL has no host', 'the callback URL must use https')
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse

MAX_LENGTH = 2048
ENV = "RELAIS_WEBHOOK_ALLOW_LOOPBACK_HTTP"


def loopback_allowed() -> bool:
    return os.environ.get(ENV, "") in ("1", "true", "yes")


def problem(url: str, *, allow_loopback: bool | None = None) -> str | None:
    """Why `url` cannot be a callback URL (English, for the Error body), None when it can."""
    if allow_loopback is None:
        allow_loopback = loopback_allowed()
    if len(url) > MAX_LENGTH:
        return f"the callback URL is longer than {MAX_LENGTH} characters"
    if not url.isascii() or any(not ch.isprintable() or ch.isspace() for ch in url):
        return "the callback URL must be printable ASCII without spaces"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        return "the callback URL is not a valid URL"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "the callback URL must not carry credentials"
    if parts.fragment:
        return "the callback URL must not have a fragment"
    loopback_http = allow_loopback and parts.scheme == "http" and host == "127.0.0.1"
    if parts.scheme != "https" and not loopback_http:
        return "the callback URL must use https"
    if not host:
        return "the callback URL has no host"
    if port == 0:
        return "the callback URL has an invalid port"
    if loopback_http:
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost" or host.endswith(".localhost"):
            return "the callback URL must not be a private or reserved address"
        return None
    if not address.is_global:
        return "the callback URL must not be a private or reserved address"
    return None
