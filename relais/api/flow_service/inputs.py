"""What the flow service's requests carry, checked against the contract by hand (the contract's own schemas:
a value outside them is a 400 in its `Error` shape, never a 500): a deposit's ``flowInfo``, a search's
``SearchFlowParams``, a webhook's ``WebhookParams``, the opaque search cursor.

>>> decode_cursor(encode_cursor((dt.datetime(2026, 1, 2, tzinfo=dt.UTC), "CPP1")))
(datetime.datetime(2026, 1, 2, 0, 0, tzinfo=datetime.timezone.utc), 'CPP1')
>>> sniff(b"%PDF-1.7"), sniff(b'<?xml version="1.0"?><Invoice xmlns="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>')
('Factur-X', 'UBL')
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
import re
import uuid
from typing import Any

from flows.domain import flow_service as fs
from relais.api.flow_service.errors import FlowServiceError

_SHA = re.compile(r"[a-f0-9]{64}")
LIMIT_DEFAULT, LIMIT_MAX = 25, 100


@dataclasses.dataclass(frozen=True, slots=True)
class FlowInfo:
    name: str
    syntax: str
    tracking_id: str | None
    processing_rule: str | None
    profile: str | None
    sha256: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class Search:
    where: dict[str, Any]
    limit: int
    cursor: tuple[dt.datetime, str] | None
    updated_after: dt.datetime | None
    updated_before: dt.datetime | None
    processing_rules: tuple[str, ...] | None
    flow_types: tuple[str, ...] | None
    directions: tuple[str, ...] | None
    tracking_id: str | None
    ack: str | None


def bad(message: str, code: str = "INVALID_REQUEST") -> FlowServiceError:
    return FlowServiceError(400, message, code)


def _str(
    obj: dict[str, Any], key: str, *, max_length: int, required: bool = False, choices: tuple[str, ...] | None = None
) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise bad(f"{key} is required", "MISSING_REQUIRED_FIELD")
        return None
    if not isinstance(value, str) or len(value) > max_length:
        raise bad(f"{key} must be a string of at most {max_length} characters")
    if choices is not None and value not in choices:
        raise bad(f"{key} must be one of {', '.join(choices)}")
    return value


def _list(obj: dict[str, Any], key: str, choices: tuple[str, ...]) -> tuple[str, ...] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) and v in choices for v in value) or len(value) > 50:
        raise bad(f"{key} must be a list of {', '.join(choices)}")
    return tuple(value)


def _time(obj: dict[str, Any], key: str) -> dt.datetime | None:
    value = obj.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str) or len(value) > 40 or "T" not in value.upper():
            raise ValueError
        at = dt.datetime.fromisoformat(value.replace("z", "Z"))
        if at.tzinfo is None:
            raise ValueError
        return at.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise bad(f"{key} must be an RFC 3339 date-time with its offset") from None


def json_object(raw: bytes | str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise bad(f"{what} must be a JSON object")
    return value


def flow_info(raw: bytes | str) -> FlowInfo:
    obj = json_object(raw, "flowInfo")
    name = _str(obj, "name", max_length=255, required=True)
    syntax = _str(obj, "flowSyntax", max_length=16, required=True, choices=fs.SYNTAXES)
    sha = _str(obj, "sha256", max_length=64)
    if sha is not None and not _SHA.fullmatch(sha):
        raise bad("sha256 must be 64 lowercase hexadecimal digits")
    assert name is not None and syntax is not None
    if not name.strip():
        raise bad("name must not be empty", "MISSING_REQUIRED_FIELD")
    return FlowInfo(
        name=name,
        syntax=syntax,
        tracking_id=_str(obj, "trackingId", max_length=64),
        processing_rule=_str(obj, "processingRule", max_length=24, choices=fs.PROCESSING_RULES),
        profile=_str(obj, "flowProfile", max_length=24, choices=fs.PROFILES),
        sha256=sha,
    )


def encode_cursor(key: tuple[dt.datetime, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps([fs.iso(key[0]), key[1]]).encode()).decode()


def decode_cursor(value: str) -> tuple[dt.datetime, str]:
    try:
        at, key = json.loads(base64.urlsafe_b64decode(value.encode("ascii")))
        if not isinstance(key, str) or len(key) > 64:
            raise ValueError
        when = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)), key
    except (ValueError, TypeError, binascii.Error, UnicodeError, AttributeError, RecursionError):
        raise bad("cursor is not a cursor this service gave") from None


def search(raw: bytes) -> Search:
    obj = json_object(raw, "the search")
    where = obj.get("where")
    if not isinstance(where, dict):
        raise bad("where is required (an object with at least one criterion)", "MISSING_REQUIRED_FIELD")
    known = ("updatedAfter", "updatedBefore", "processingRule", "flowType", "flowDirection", "trackingId", "ackStatus")
    if not any(where.get(k) is not None for k in known):
        raise bad("where needs at least one criterion", "MISSING_REQUIRED_FIELD")
    limit = obj.get("limit", LIMIT_DEFAULT)
    if limit is None:
        limit = LIMIT_DEFAULT
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= LIMIT_MAX:
        raise bad(f"limit must be a whole number from 1 to {LIMIT_MAX}")
    cursor = obj.get("cursor")
    if cursor is not None and (not isinstance(cursor, str) or len(cursor) > 400):
        raise bad("cursor is not a cursor this service gave")
    return Search(
        where=where,
        limit=limit,
        cursor=decode_cursor(cursor) if cursor else None,
        updated_after=_time(where, "updatedAfter"),
        updated_before=_time(where, "updatedBefore"),
        processing_rules=_list(where, "processingRule", fs.PROCESSING_RULES),
        flow_types=_list(where, "flowType", fs.FLOW_TYPES),
        directions=_list(where, "flowDirection", fs.DIRECTIONS),
        tracking_id=_str(where, "trackingId", max_length=64),
        ack=_str(where, "ackStatus", max_length=16, choices=fs.ACK_STATUSES),
    )


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookParams:
    callback_url: str
    flow_types: tuple[str, ...] | None
    direction: str | None
    ack: str | None


def webhook(raw: bytes) -> WebhookParams:
    obj = json_object(raw, "the webhook")
    url = _str(obj, "callbackUrl", max_length=2048, required=True)
    assert url is not None
    return WebhookParams(
        callback_url=url,
        flow_types=_list(obj, "flowTypes", fs.FLOW_TYPES),
        direction=_str(obj, "flowDirection", max_length=8, choices=fs.DIRECTIONS),
        ack=_str(obj, "ackStatus", max_length=16, choices=fs.ACK_STATUSES),
    )


def webhook_uid(value: str) -> str:
    try:
        return str(uuid.UUID(value)) if len(value) <= 36 else ""
    except ValueError:
        return ""


def sniff(head: bytes) -> str | None:
    """The syntax of a file from its first bytes: a PDF (Factur-X), or an XML whose root is a UBL invoice or
    credit note, a CII invoice or a CDAR message; None: none of these."""
    if head.startswith(b"%PDF-"):
        return "Factur-X"
    text = head[:4096].decode("utf-8", "replace")
    m = re.search(r"<(?!\?|!)(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)", text)
    root = m.group(1) if m else ""
    return {
        "Invoice": "UBL",
        "CreditNote": "UBL",
        "CrossIndustryInvoice": "CII",
        "CrossDomainAcknowledgementAndResponse": "CDAR",
    }.get(root)
