"""The ``webhook`` channel: an outbox row of kind `OutboxKind.WEBHOOK` is posted by httpx to its callback URL
(the row's destination) with the contract's signature headers.

Signature (XP Z12-013 ``createWebhook``): fingerprint = SHA-256 of ``payload + "@" + timestamp`` (the epoch
seconds), signature = base64 of HMAC-SHA-256 over the fingerprint (its hex digest, ASCII **[choice]**: the
contract does not say which encoding of the fingerprint is signed) with the webhook's signing key (the
base64-decoded ``signingKey``); headers ``Afnor-Signature`` and ``Afnor-Signature-Timestamp``. A 2xx answer
is a delivery; anything else (or no answer within the timeout, or a redirect: never followed) raises, and
the outbox retries the row with its backoff. The URL is checked again before each post (connectors/webhook/url.py).

>>> sign(b'{"flowId":"CPP1"}', 1767225600, b"k" * 32)
'tM2KelkPKvZzqyOhjItaDMgZGPQsLn4G6BoUnhU5b5s='
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import time
from types import TracebackType

from connectors.webhook import url as urls
from flows.domain.errors import ConfigError
from flows.domain.outbox import Address, OutboxItem, OutboxKind
from flows.store import Store

CHANNEL = "webhook"
TIMEOUT_SECONDS = 10.0


def sign(payload: bytes, timestamp: int, key: bytes) -> str:
    fingerprint = hashlib.sha256(payload + b"@" + str(timestamp).encode()).hexdigest()
    return base64.b64encode(hmac.new(key, fingerprint.encode("ascii"), hashlib.sha256).digest()).decode()


def webhook_id(item: OutboxItem) -> str:
    """The webhook of a row, from its key ``webhook:<uid>:<flow>:<status>``."""
    return item.key.split(":", 2)[1]


@dataclasses.dataclass
class WebhookChannel:
    """Outbound only (never a return address): each row on its own, unordered."""

    store: Store | None = None
    name: str = CHANNEL
    ordered: bool = False

    def return_address(self, partner_id: str, file_name: str) -> Address | None:
        return None

    def sender(self, kind: OutboxKind, partner_id: str | None) -> WebhookSender:
        if kind is not OutboxKind.WEBHOOK or self.store is None:
            raise ConfigError(f"the webhook channel sends only webhook events with a store, not {kind}")
        return WebhookSender(self.store)


class WebhookSender:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._client: object | None = None

    def __enter__(self) -> WebhookSender:
        import httpx

        self._client = httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            self._client.close()  # type: ignore[attr-defined]

    def send(self, item: OutboxItem, data: bytes) -> None:
        import httpx

        hook = self.store.webhook(webhook_id(item))
        if hook is None:
            raise LookupError(f"webhook {webhook_id(item)} is not recorded")
        if (why := urls.problem(item.destination)) is not None:
            raise ValueError(why)
        now = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Afnor-Signature": sign(data, now, base64.b64decode(hook.signing_key)),
            "Afnor-Signature-Timestamp": str(now),
            "User-Agent": "Relais-webhook",
        }
        assert isinstance(self._client, httpx.Client)
        answer = self._client.post(item.destination, content=data, headers=headers)
        if not 200 <= answer.status_code < 300:
            raise RuntimeError(f"the callback answered {answer.status_code}")
