"""Sending by AS2: return flows to partners (outbox rows of channel ``as2``) and async MDNs.

Both are the AS2 channel's senders (`connectors.as2.channel`), called by `flows.pipeline.dispatch`
inside its per-partner order and backoff: ``with Sender(store, archive, partner) as s: s.send(item, data)``. A transport failure
(connection refused, timeout, HTTP status other than 2xx) raises, so the row
stays pending and is retried with backoff, under the same Message-ID (a
receiver that got the first try answers with its original MDN).

A message is recorded in ``as2_messages`` (direction "out") *before* it is
POSTed, with the MIC computed when wrapping it: status ``pending``. Then:

- sync MDN: the MDN in the HTTP response is archived and judged at once;
- async MDN: status ``sent``; the partner POSTs the MDN to Relais's endpoint
  (`connectors.as2.receiver`), which judges it with `settle_mdn`.

Judging: the MDN must be signed by the partner's certificate, name the
message's Message-ID, say ``processed`` and carry the MIC computed at send
time: ``mdn-ok``. Anything else is ``mdn-error`` with the reason in
``detail``, and final: the partner did receive the message, sending it again
would not change its answer (logged as a warning; `relais flows ID` shows it).
"""

from __future__ import annotations

import email.utils
from types import TracebackType

import httpx

from archive import Archive
from connectors.as2 import mdn, message
from connectors.as2.station import Party, load_party, new_message_id, quote_id
from connectors.partners import Partner
from flows.domain import log
from flows.domain.errors import ConfigError, RelaisError
from flows.domain.outbox import OutboxItem, OutboxKind
from flows.store import As2Message, As2Status, Store

_log = log.get("relais.as2")
TIMEOUT = httpx.Timeout(connect=10.0, read=300.0, write=300.0, pool=10.0)
USER_AGENT = "Relais AS2"
#: What a new try of a message changes in its row (the rest stays the first try's).
_RESENT_FIELDS = ("raw_sha256", "mic", "mic_digest", "headers", "mdn_mode", "mdn_target")


class As2SendError(RelaisError):
    """The partner's endpoint did not take the message (retried with backoff)."""


class _Http:
    def __init__(self) -> None:
        self.client: httpx.Client | None = None

    def __enter__(self):
        self.client = httpx.Client(timeout=TIMEOUT, follow_redirects=False, headers={"User-Agent": USER_AGENT})
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> httpx.Response:
        assert self.client is not None
        try:
            response = self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as e:
            raise As2SendError(f"POST {url}: {type(e).__name__}: {e}") from e
        if not 200 <= response.status_code < 300:
            raise As2SendError(f"POST {url}: HTTP {response.status_code} {response.text[:300]!r}")
        return response


class Sender(_Http):
    """Sends one partner's return flows as AS2 messages."""

    def __init__(self, store: Store, archive: Archive, partner: Partner | None) -> None:
        super().__init__()
        if partner is None or partner.as2 is None or not partner.as2.url:
            raise ConfigError("no AS2 configuration with a url for this partner any more")
        self.store, self.archive = store, archive
        self.party: Party = load_party(partner)

    def send(self, item: OutboxItem, data: bytes) -> None:
        """Send one return flow; its destination is the file name the partner receives."""
        store, archive, party, cfg = self.store, self.archive, self.party, self.party.cfg
        name = item.destination
        row = store.as2_for_outbox(item.id)
        if row is not None and row.mdn_status in (As2Status.MDN_OK, As2Status.MDN_ERROR, As2Status.SENT):
            return  # done before (a crash came before the outbox row was marked sent)
        message_id = row.message_id if row is not None else new_message_id(cfg.our_as2_id)
        wrapped = message.wrap(
            data,
            name,
            content_type="application/pdf" if name.lower().endswith(".pdf") else "application/xml",
            sign=party.own if cfg.sign else None,
            encrypt_for=party.cert if cfg.encryption else None,
            compress=cfg.compress,
            digest=cfg.digest,
            algorithm=cfg.encryption or "aes256-cbc",
        )
        headers = [
            ("AS2-Version", "1.2"),
            ("AS2-From", quote_id(cfg.our_as2_id)),
            ("AS2-To", quote_id(cfg.as2_id)),
            ("Message-ID", message_id),
            ("Subject", f"Relais {'invoice' if item.kind is OutboxKind.DELIVERY else 'return flow'} {name}"),
            ("Date", email.utils.formatdate(usegmt=True)),
            ("MIME-Version", "1.0"),
            ("Disposition-Notification-To", cfg.async_mdn_url or quote_id(cfg.our_as2_id)),
            (
                "Disposition-Notification-Options",
                f"signed-receipt-protocol=optional, pkcs7-signature; signed-receipt-micalg=optional, {cfg.digest}",
            ),
            *wrapped.headers,
        ]
        if cfg.mdn == "async" and cfg.async_mdn_url:
            headers.append(("Receipt-Delivery-Option", cfg.async_mdn_url))
        mode = "async" if cfg.mdn == "async" and cfg.async_mdn_url else "sync"
        sent = archive.put_bytes(wrapped.body)  # what goes on the wire is archived first
        this_send = As2Message(
            direction="out",
            message_id=message_id,
            partner=party.id,
            as2_from=cfg.our_as2_id,
            as2_to=cfg.as2_id,
            mdn_status=As2Status.PENDING,
            flow_id=item.flow_id,
            outbox_id=item.id,
            raw_sha256=sent.sha256,
            mic=wrapped.mic,
            mic_digest=wrapped.mic_digest,
            headers={k: v for k, v in headers},
            mdn_mode=mode,
            mdn_target=cfg.async_mdn_url if mode == "async" else None,
        )
        if row is None:
            row, _ = store.as2_record(this_send)
        else:  # sent again: the row of the first try says what went on the wire this time
            for key in _RESENT_FIELDS:
                setattr(row, key, getattr(this_send, key))
            store.as2_update(row)
        with log.bound(as2_message_id=message_id, partner=party.id):
            response = self._post(cfg.url or "", headers, wrapped.body)
            if mode == "async":
                row.mdn_status = As2Status.SENT
                store.as2_update(row, only_if_status=[As2Status.PENDING])  # the MDN may be in already
                _log.info("as2.sent", name=name, mdn="async")
                return
            content_type = response.headers.get("content-type", "")
            archived = archive.put_bytes(
                b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + response.content
            )
            settle_mdn(store, party, content_type, response.content, archived.sha256, expected=row)


def settle_mdn(
    store: Store, party: Party, content_type: str, body: bytes, archive_sha256: str, expected: As2Message | None = None
) -> str | None:
    """Judge an MDN for a message Relais sent and record the outcome (mdn-ok / mdn-error).

    `expected` is the sent message (sync); otherwise it is found by the MDN's
    Original-Message-ID (async): None when no such message was sent to `party`.
    """
    error: str | None = None
    parsed: mdn.Mdn | None = None
    try:
        parsed = mdn.parse(content_type, body, partner_certs=[party.cert], require_signature=True)
    except Exception as e:  # an unusable MDN is an answer (mdn-error), never a retry
        error = f"MDN refused: {type(e).__name__}: {e}"
        try:
            parsed = mdn.parse(content_type, body, partner_certs=[], verify=False)
        except Exception:
            parsed = None
    row = expected
    if row is None:
        if parsed is None or not parsed.original_message_id:
            return None
        row = store.as2_find(party.id, parsed.original_message_id, "out")
        if row is None:
            _log.warning("as2.mdn_unmatched", partner=party.id, original_message_id=parsed.original_message_id)
            return None
    if error is None and parsed is not None:
        if parsed.original_message_id != row.message_id:
            error = f"the MDN is about {parsed.original_message_id!r}, not {row.message_id!r}"
        elif not parsed.processed:
            error = f"negative MDN: {parsed.disposition}"
        elif not parsed.mic:
            error = "the MDN has no Received-Content-MIC"
        elif parsed.mic != row.mic or (parsed.mic_digest and parsed.mic_digest != row.mic_digest):
            error = (
                f"MIC mismatch: the partner computed {parsed.mic}, {parsed.mic_digest}; "
                f"Relais sent {row.mic}, {row.mic_digest}"
            )
    row.mdn_archive_sha256 = archive_sha256
    row.mdn_status = As2Status.MDN_OK if error is None else As2Status.MDN_ERROR
    row.detail = error or (parsed.disposition if parsed else None)
    if not store.as2_update(row, only_if_status=[As2Status.PENDING, As2Status.SENT]):
        current = store.as2_get(row.id or 0)
        _log.info("as2.mdn_again", partner=party.id, status=current.mdn_status if current else None)
        return current.mdn_status if current else row.mdn_status
    if error is None:
        _log.info("as2.mdn_ok", partner=party.id, as2_message_id=row.message_id, flow_id=row.flow_id)
    else:
        _log.warning(
            "as2.mdn_error", partner=party.id, as2_message_id=row.message_id, flow_id=row.flow_id, detail=error
        )
    return row.mdn_status


class MdnSender(_Http):
    """POSTs async MDNs (outbox rows of kind ``as2-mdn``) to the partners' Receipt-Delivery-Option URLs."""

    def send(self, item: OutboxItem, data: bytes) -> None:
        headers, body = mdn.http_parts(data)
        self._post(item.destination, headers, body)
        _log.info("as2.mdn_sent", url=item.destination, key=item.key)
