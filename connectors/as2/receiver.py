"""The AS2 endpoint (RFC 4130): an ASGI app that receives partners' messages and answers with MDNs.

``POST /as2`` (or ``/``) takes a message. In order:

1. Headers: AS2-From, AS2-To, Message-ID and Content-Type are required (else
   HTTP 400, a plain text naming what is missing: without them no MDN can be
   addressed). The body is read up to the partner's ``max_bytes`` (1 MB for an
   unknown AS2-From); a larger body gets HTTP 413 and nothing is kept (it was
   not received: an MDN would say it was).
2. **Archive first**: the body bytes as received are archived, then an
   ``as2_messages`` row (direction "in") records the headers that matter.
3. A Message-ID already received from that partner and answered is not
   processed again: its original MDN (the archived bytes) is given again.
4. Checks, each giving a negative MDN ``processed/error: <modifier>``: unknown
   AS2-From or an AS2-To that is not Relais's id for that partner
   (authentication-failed: RFC 4130 has no "unknown trading partner"
   modifier; authentication is what failed), an empty body
   (unexpected-processing-error), then `message.unwrap` (decryption-failed,
   authentication-failed, integrity-check-failed, insufficient-message-security,
   decompression-failed, unexpected-processing-error), then the signer's
   certificate dates and key usage (authentication-failed).
5. The payload is archived and recorded as a flow of channel ``as2``; the
   pipeline (`relais run`, the Airflow DAG) takes it like any drop zone's file.
6. The MDN (`connectors.as2.mdn`) is archived and the row updated; signed when
   the sender asked for ``signed-receipt-protocol=pkcs7-signature``, with
   Received-Content-MIC in the sender's spelling of the digest.
   Synchronous: it is the HTTP response. Asynchronous (Receipt-Delivery-Option):
   an outbox row (kind ``as2-mdn``) is written *before* the empty HTTP 200, and
   the MDN is POSTed by `flows.pipeline.dispatch` (retried with backoff; the server
   runs that dispatch itself right away and every few seconds). A message
   from an unknown AS2-From gets its MDN synchronously, never POSTed to a URL
   nobody vouches for.

MDNs for messages Relais sent (async) are taken on the same path (a
``multipart/report`` or a signed one) or on ``/mdn``.

Limits against slow or hostile clients: `ServerLimits` (header and body
timeouts, header size, concurrent connections); the blocking work (crypto,
archive, store) runs in a bounded thread pool so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from connectors.as2 import certs, cms, mdn, message, sender
from connectors.as2.errors import As2CryptoError
from connectors.as2.station import Party, load_parties, safe_name, unquote_id, wants_signed_receipt
from connectors.partners import Partner
from flows.domain import log
from flows.domain.model import Channel
from flows.domain.outbox import Address, OutboxKind
from flows.pipeline import dispatch
from flows.pipeline.dispatch import Outbound
from flows.pipeline.intake import Arrival, Intake
from flows.store import As2Message, As2Status

_log = log.get("relais.as2")

REQUIRED = ("as2-from", "as2-to", "message-id", "content-type")
KEPT_HEADERS = (
    "as2-from",
    "as2-to",
    "message-id",
    "content-type",
    "content-length",
    "as2-version",
    "subject",
    "date",
    "disposition-notification-to",
    "disposition-notification-options",
    "receipt-delivery-option",
    "content-disposition",
    "content-transfer-encoding",
    "mime-version",
    "user-agent",
    "from",
    "ediint-features",
)


@dataclasses.dataclass(frozen=True)
class ServerLimits:
    max_bytes: int = 200_000_000  # largest body from anyone (a partner's [as2] max_bytes may lower it)
    unknown_max_bytes: int = 1_000_000  # largest body kept from an unknown AS2-From
    header_timeout: float = 10.0  # request line + headers must arrive within this (slowloris)
    body_timeout: float = 30.0  # longest wait for the next body bytes
    request_timeout: float = 900.0  # whole body
    keep_alive: int = 5
    max_header_bytes: int = 16 * 1024
    limit_concurrency: int = 200  # connections; beyond, HTTP 503
    workers: int = 8  # threads doing the blocking work (crypto, archive, store)
    mdn_poll_seconds: float = 5.0  # async MDNs due for a retry are looked at this often


class _HttpError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclasses.dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


def _text(status: int, text: str) -> Reply:
    return Reply(status, [("Content-Type", "text/plain; charset=utf-8")], (text.rstrip("\n") + "\n").encode())


class As2App:
    """The ASGI application. Files go in through `intake` (`flows.pipeline.intake`: archive first, one idempotence
    rule); async MDNs go out through `outbound`'s AS2 channel. Both are shared by the worker threads
    (the store and the archive are thread-safe)."""

    def __init__(
        self,
        intake: Intake,
        partners: Mapping[str, Partner],
        outbound: Outbound,
        limits: ServerLimits = ServerLimits(),
        health: Callable[[str], tuple[int, bytes] | None] | None = None,
    ) -> None:
        self.intake, self.store, self.archive, self.outbound = intake, intake.store, intake.archive, outbound
        self.limits = limits
        self.health = health  # path -> (status, JSON body) for /healthz and /readyz (relais/health.py)
        self.parties, self.problems = load_parties(dict(partners))
        self._pool = concurrent.futures.ThreadPoolExecutor(limits.workers, thread_name_prefix="as2")
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_guard = threading.Lock()
        self._mdn_wakeup = threading.Event()
        self._mdn_stop = threading.Event()
        self._mdn_thread: threading.Thread | None = None

    # ---- ASGI ---------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            reply = await self._handle(scope, receive)
        except _HttpError as e:
            reply = _text(e.status, e.text)
            reply.headers.append(("Connection", "close"))
        headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers if k.lower() != "content-length"
        ]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            event = await receive()
            if event["type"] == "lifespan.startup":
                self.start_mdn_pump()
                await send({"type": "lifespan.startup.complete"})
            elif event["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _handle(self, scope: dict[str, Any], receive: Callable) -> Reply:
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        if self.health is not None and method in ("GET", "HEAD") and (found := self.health(path)) is not None:
            return Reply(found[0], [("Content-Type", "application/json")], found[1])
        if path not in ("/", "/as2", "/mdn"):
            return _text(404, "not found: AS2 messages go to /as2")
        if method in ("GET", "HEAD"):
            return _text(200, "Relais AS2 endpoint: POST AS2 messages here")
        if method != "POST":
            return Reply(405, [("Allow", "GET, HEAD, POST"), ("Content-Type", "text/plain")], b"POST only\n")
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1").lower()
            text = value.decode("latin-1").strip()
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        missing = [h for h in REQUIRED if not headers.get(h)]
        if missing:
            raise _HttpError(400, "missing AS2 header(s): " + ", ".join(_title(h) for h in missing))
        for name, longest in (
            ("as2-from", 128),
            ("as2-to", 128),
            ("message-id", 998),
            ("receipt-delivery-option", 1024),
        ):
            if len(unquote_id(headers.get(name, ""))) > longest:
                raise _HttpError(400, f"{_title(name)} longer than {longest} characters")
        party = self.parties.get(unquote_id(headers["as2-from"]))
        cap = min(self.limits.max_bytes, party.cfg.max_bytes if party else self.limits.unknown_max_bytes)
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise _HttpError(400, "invalid Content-Length")
            if int(length) > cap:
                raise _HttpError(413, f"message too large: {length} bytes, {cap} at most")
        body = await self._read_body(receive, cap)
        is_mdn = path == "/mdn" or _looks_like_mdn(headers["content-type"], body)
        loop = asyncio.get_running_loop()
        work = self.receive_mdn if is_mdn else self.receive_message
        return await loop.run_in_executor(self._pool, work, headers, body)

    async def _read_body(self, receive: Callable, cap: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.limits.request_timeout
        while True:
            wait = min(self.limits.body_timeout, deadline - time.monotonic())
            try:
                event = await asyncio.wait_for(receive(), max(wait, 0.001))
            except TimeoutError:
                raise _HttpError(408, "request body too slow") from None
            if event["type"] == "http.disconnect":
                raise _HttpError(400, "client disconnected")
            chunk = event.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > cap:
                    raise _HttpError(413, f"message too large: over {cap} bytes")
                chunks.append(chunk)
            if not event.get("more_body", False):
                return b"".join(chunks)

    # ---- messages (in a worker thread) ---------------------------------------------------

    def _lock(self, key: tuple[str, str]) -> threading.Lock:
        with self._locks_guard:
            if len(self._locks) > 10_000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(key, threading.Lock())

    def receive_message(self, headers: dict[str, str], body: bytes) -> Reply:
        as2_from, message_id = unquote_id(headers["as2-from"]), headers["message-id"].strip()
        with self._lock((as2_from, message_id)), log.bound(as2_message_id=message_id, as2_from=as2_from):
            return self._receive_message(headers, body)

    def _receive_message(self, headers: dict[str, str], body: bytes) -> Reply:
        party = self.parties.get(unquote_id(headers["as2-from"]))
        env = _Envelope.of(headers, known_sender=party is not None)
        raw = self.archive.put_bytes(body)  # archive first: the bytes as received
        row, created = self.store.as2_record(
            As2Message(
                direction="in",
                message_id=env.message_id,
                partner=party.id if party else None,
                as2_from=env.as2_from,
                as2_to=env.as2_to,
                mdn_status=As2Status.RECEIVED,
                raw_sha256=raw.sha256,
                headers={k: headers[k] for k in KEPT_HEADERS if k in headers},
                mdn_mode=env.mode,
                mdn_target=env.async_url,
            )
        )
        if not created and row.mdn_status != As2Status.RECEIVED:
            return self._duplicate(row, env.mode, env.async_url)
        if not created:  # received before, never answered (a crash in between): this copy is processed
            _log.info("as2.resumed", partner=row.partner)
            row.raw_sha256, row.mdn_mode, row.mdn_target = raw.sha256, env.mode, env.async_url

        micalgs = message.requested_micalgs(headers.get("disposition-notification-options"))
        opened = _open(env, party, headers, body, micalgs)
        modifier: str | None = None
        if isinstance(opened, _Refusal):
            modifier, row.detail = opened.modifier, opened.detail
            _log.warning("as2.refused", partner=row.partner, disposition=modifier, detail=row.detail)
        else:
            assert party is not None  # only a known partner's message is opened
            if row.flow_id is None:  # resumed after a crash: the flow may exist already (flows.pipeline.intake)
                name = safe_name(opened.filename, f"as2-{env.message_id}")
                arrival = Arrival(party.id, Channel.AS2, name, written_at=row.received_at)
                row.flow_id = self.intake.ingest(arrival, opened.payload).flow.id
            row.mic, row.mic_digest, row.detail = opened.mic, opened.mic_digest, None
            _log.info(
                "as2.received",
                partner=row.partner,
                flow_id=row.flow_id,
                signed=opened.signed,
                encrypted=opened.encrypted,
                compressed=opened.compressed,
                size=len(body),
            )
        row.mdn_status = As2Status.PROCESSED if modifier is None else f"processed/error: {modifier}"
        return self._answer(row, env, party, modifier, headers, micalgs)

    def _answer(
        self,
        row: As2Message,
        env: _Envelope,
        party: Party | None,
        modifier: str | None,
        headers: dict[str, str],
        micalgs: list[str],
    ) -> Reply:
        """Record the outcome in `row` and answer: no MDN, the MDN (sync), or an empty 200 and the MDN
        queued (async); the MDN is archived first."""
        if env.mode is None:  # no MDN asked for
            self.store.as2_update(row)
            return _text(200, row.mdn_status)
        sign = party is not None and wants_signed_receipt(headers.get("disposition-notification-options"))
        label = row.mic_digest or message.choose_mic_digest(micalgs)  # the sender's spelling
        built = mdn.build(
            our_id=party.cfg.our_as2_id if party else env.as2_to,
            partner_id=env.as2_from,
            original_message_id=env.message_id,
            modifier=modifier,
            mic=row.mic,
            mic_label=row.mic_digest,
            detail=row.detail,
            sign=party.own if sign and party else None,
            sign_digest=cms.normalise_digest(label),
            micalg_label=label,
        )
        row.mdn_archive_sha256 = self.archive.put_bytes(built.data).sha256
        if env.mode == "async":
            self.store.as2_update(row, mdn_outbox=self._mdn_outbox_row(row, env.async_url or ""))
            self._mdn_wakeup.set()
            return Reply(200, [("Content-Type", "text/plain")], b"")
        self.store.as2_update(row)
        return _mdn_reply(built.data)

    def _mdn_outbox_row(self, row: As2Message, url: str) -> dict[str, object]:
        suffix = hashlib.sha256(f"{row.id}:{time.time_ns()}".encode()).hexdigest()[:16]
        return {
            "key": f"as2-mdn:{row.partner}:{row.id}:{suffix}",
            "address": Address("as2", row.partner, url),
            "archive_sha256": row.mdn_archive_sha256 or "",
        }

    def _duplicate(self, row: As2Message, mode: str | None, async_url: str | None) -> Reply:
        """A Message-ID already answered: its original MDN again, nothing processed twice."""
        _log.warning("as2.duplicate", partner=row.partner, flow_id=row.flow_id, mdn_status=row.mdn_status)
        if not row.mdn_archive_sha256 or mode is None:
            return _text(200, f"duplicate of a message already received: {row.mdn_status}")
        if mode == "async" and async_url:
            self.store.as2_update(row, mdn_outbox=self._mdn_outbox_row(row, async_url))
            self._mdn_wakeup.set()
            return Reply(200, [("Content-Type", "text/plain")], b"")
        return _mdn_reply(self.archive.read(row.mdn_archive_sha256))

    # ---- MDNs for what Relais sent -------------------------------------------------------

    def receive_mdn(self, headers: dict[str, str], body: bytes) -> Reply:
        """An async MDN posted back for a message Relais sent: matched by Original-Message-ID."""
        party = self.parties.get(unquote_id(headers["as2-from"]))
        if party is None:
            raise _HttpError(403, f"unknown AS2-From {headers['as2-from']!r}")
        archived = self.archive.put_bytes(_entity(headers, body))  # archive first
        outcome = sender.settle_mdn(self.store, party, headers["content-type"], body, archived.sha256)
        if outcome is None:
            raise _HttpError(404, "no message sent by Relais has this Original-Message-ID")
        return _text(200, f"MDN recorded: {outcome}")

    # ---- async MDN pump -----------------------------------------------------------------

    def start_mdn_pump(self) -> None:
        if self._mdn_thread is None:
            self._mdn_thread = threading.Thread(target=self._pump, name="as2-mdn", daemon=True)
            self._mdn_thread.start()

    def _pump(self) -> None:
        while not self._mdn_stop.is_set():
            self._mdn_wakeup.wait(self.limits.mdn_poll_seconds)
            self._mdn_wakeup.clear()
            if self._mdn_stop.is_set():
                return
            try:
                dispatch.dispatch(self.outbound, kinds=(OutboxKind.MDN,))
            except Exception as e:  # the pump must survive (the store may be down a moment)
                _log.warning("as2.mdn_pump_failed", error=f"{type(e).__name__}: {e}")

    def close(self) -> None:
        self._mdn_stop.set()
        self._mdn_wakeup.set()
        if self._mdn_thread is not None:
            self._mdn_thread.join(timeout=30)
            self._mdn_thread = None
        self._pool.shutdown(wait=True)


def make_app(
    intake: Intake,
    partners: Mapping[str, Partner],
    outbound: Outbound,
    limits: ServerLimits = ServerLimits(),
    health: Callable[[str], tuple[int, bytes] | None] | None = None,
) -> As2App:
    return As2App(intake, partners, outbound, limits, health)


# ---- helpers ---------------------------------------------------------------------------------


def _title(header: str) -> str:
    return {
        "as2-from": "AS2-From",
        "as2-to": "AS2-To",
        "message-id": "Message-ID",
        "content-type": "Content-Type",
        "receipt-delivery-option": "Receipt-Delivery-Option",
    }.get(header, header)


_FIRST_CONTENT_TYPE = re.compile(rb"^content-type:[ \t]*([^\s;]+)", re.I | re.M)


def _looks_like_mdn(content_type: str, body: bytes) -> bool:
    """An MDN: multipart/report, or multipart/signed whose first part is one (its Content-Type is the
    first one in the body)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "multipart/report":
        return True
    if kind != "multipart/signed":
        return False
    first = _FIRST_CONTENT_TYPE.search(body[:4096])
    return bool(first and first.group(1).lower() == b"multipart/report")


def _mdn_reply(data: bytes) -> Reply:
    headers, body = mdn.http_parts(data)
    return Reply(200, headers, body)


def _entity(headers: dict[str, str], body: bytes) -> bytes:
    head = "".join(f"{_title(k)}: {v}\r\n" for k, v in headers.items() if k in KEPT_HEADERS)
    return head.encode("utf-8", "replace") + b"\r\n" + body


@dataclasses.dataclass(frozen=True)
class _Envelope:
    """Who sent an AS2 message to whom under which Message-ID, and the MDN asked for (None, "sync",
    "async" to `async_url`)."""

    as2_from: str
    as2_to: str
    message_id: str
    mode: str | None
    async_url: str | None

    @classmethod
    def of(cls, headers: Mapping[str, str], *, known_sender: bool) -> _Envelope:
        wants_mdn = bool(headers.get("disposition-notification-to"))
        async_url = headers.get("receipt-delivery-option") if wants_mdn else None
        if async_url and not re.match(r"^https?://", async_url):
            async_url = None  # mailto: and others are not supported: answer synchronously
        if not known_sender:
            async_url = None  # never POST to a URL that an unknown sender gave
        mode = None if not wants_mdn else ("async" if async_url else "sync")
        return cls(
            unquote_id(headers["as2-from"]),
            unquote_id(headers["as2-to"]),
            headers["message-id"].strip(),
            mode,
            async_url,
        )


@dataclasses.dataclass(frozen=True)
class _Refusal:
    """Why a message is not processed: the negative MDN's modifier and its detail."""

    modifier: str
    detail: str


def _open(
    env: _Envelope, party: Party | None, headers: Mapping[str, str], body: bytes, micalgs: list[str]
) -> message.Unwrapped | _Refusal:
    """The payload of a message (the module doc's checks of step 4), or why it is refused."""
    if party is None:
        return _Refusal("authentication-failed", f"unknown AS2-From {env.as2_from!r}")
    if env.as2_to != party.cfg.our_as2_id:
        return _Refusal("authentication-failed", f"AS2-To {env.as2_to!r} is not Relais's AS2 id for {env.as2_from!r}")
    if not body:
        return _Refusal("unexpected-processing-error", "empty message body")
    try:
        unwrapped = message.unwrap(
            headers["content-type"],
            body,
            own=party.own,
            partner_certs=[party.cert],
            requested_digests=micalgs,
            max_bytes=party.cfg.max_bytes,
            require_signature=party.cfg.require_signature,
            require_encryption=party.cfg.require_encryption,
            content_disposition=headers.get("content-disposition"),
        )
        problems = certs.problems(unwrapped.signer, purpose="signing") if unwrapped.signer is not None else []
    except As2CryptoError as e:
        return _Refusal(e.disposition, f"{type(e).__name__}: {e}")
    except Exception as e:  # any failure is a negative MDN, never a crash
        _log.exception("as2.unexpected_error", error=str(e))
        return _Refusal("unexpected-processing-error", type(e).__name__)
    if problems:
        return _Refusal("authentication-failed", "; ".join(problems))
    return unwrapped
