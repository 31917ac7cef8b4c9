"""The API's query and path parameters as typed values (issue 19, finding 5).

Every query parameter is validated into a typed value before an endpoint runs: an invalid one is answered
422 with ``problems`` naming it (``{"loc": ["query", "cursor"], ...}``), never a failure of the store.
A path id that cannot be an id (`well_formed_id`) is answered 404 like an unknown one, without a query.

>>> key = (dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "CPP0000000007", 2)
>>> decode_cursor(encode_cursor(key)) == key
True
>>> for bad in ('["2026-01-01T00:00:00+00:00","CPP0000000007",true]', '["2026-01-01T00:00:00","CPP1",1e30]'):
...     try:
...         decode_cursor(base64.urlsafe_b64encode(bad.encode()).decode())
...     except ValueError as e:
...         print(e)
invalid cursor
invalid cursor
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema

from flows.domain import frameworks
from flows.domain.frameworks import Framework
from flows.domain.lifecycle import FlowStatus, InvoiceStatus
from flows.store.api import InvoiceKey

#: A flow id (``CPP`` + digits) or an invoice id (flow id, ``-``, position): letters, digits, ``._-``.
_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_FLOW_ID = re.compile(r"CPP[0-9]{10}")
#: Positions and page keys the store can compare (an SQL integer).
MAX_POSITION = 2**31 - 1
CURSOR_MAX = 400
#: No control characters (a NUL is refused by PostgreSQL), at most 100 characters.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"


def well_formed_id(value: str) -> bool:
    """Whether a path's flow or invoice id can be one (else: 404, no query).

    >>> well_formed_id("CPP0000000006-00001"), well_formed_id("x\\x00"), well_formed_id("a" * 65)
    (True, False, False)
    """
    return _ID.fullmatch(value) is not None


def parse_status(value: str) -> InvoiceStatus | None:
    """A status by name or label (``SERVICE_FAIT``, ``REJETEE``: 05, ``A_VALIDER_1``) or by code (``07``).

    >>> parse_status("service_fait"), parse_status("07"), parse_status("REJETEE"), parse_status("nope")
    (<InvoiceStatus.SERVICE_FAIT: '07'>, <InvoiceStatus.SERVICE_FAIT: '07'>, <InvoiceStatus.REJETEE: '05'>, None)
    >>> parse_status("a_valider_1"), parse_status("30")
    (<InvoiceStatus.A_VALIDER_1: '20'>, <InvoiceStatus.MISE_A_DISPOSITION_MOE: '30'>)
    """
    value = value.strip()
    if value.upper() in InvoiceStatus.__members__:
        return InvoiceStatus[value.upper()]
    if value in InvoiceStatus._value2member_map_:
        return InvoiceStatus(value)
    return next((s for s in InvoiceStatus if s.label == value.upper()), None)


def status_of(value: str) -> InvoiceStatus:
    """`parse_status`, or ValueError naming the statuses known."""
    parsed = parse_status(value)
    if parsed is None:
        raise ValueError(f"unknown status; one of {', '.join(s.name for s in InvoiceStatus)} or their codes")
    return parsed


def _valid_status(value: str) -> str:
    status_of(value)
    return value


def aware_utc(when: dt.datetime) -> dt.datetime:
    """`when` in UTC (naive: taken as UTC); ValueError when it has no UTC equivalent (year 1 at UTC+1)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    try:
        return when.astimezone(dt.UTC)
    except OverflowError as e:
        raise ValueError("date out of range") from e


def encode_cursor(key: InvoiceKey) -> str:
    at, flow_id, position = key
    raw = json.dumps([at.astimezone(dt.UTC).isoformat(), flow_id, position], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: Any) -> InvoiceKey:
    """The key an opaque cursor stands for; ValueError ("invalid cursor") when it is not one of ours."""
    try:
        if not isinstance(cursor, str) or not 0 < len(cursor) <= CURSOR_MAX:
            raise ValueError
        at, flow_id, position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(at, str) or not at.isascii() or not at.isprintable():  # fromisoformat takes a NUL
            raise ValueError
        if not isinstance(flow_id, str) or not _FLOW_ID.fullmatch(flow_id):
            raise ValueError
        if type(position) is not int or not 0 <= position <= MAX_POSITION:  # not bool, not 10**30
            raise ValueError
        when = aware_utc(dt.datetime.fromisoformat(at))
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error, UnicodeDecodeError) as e:
        raise ValueError("invalid cursor") from e
    return when, flow_id, position


def framework_of(value: str) -> Framework:
    """A billing framework by code (``A9``) or by the platform's API name (``A9_FACTURE_SOUSTRAITANT``), any
    case; ValueError naming the frameworks known (a Peppol profile URN is no filter: not taken as A1 here).

    >>> framework_of("a9"), framework_of("A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR")
    (<Framework.A9: 'A9'>, <Framework.A4: 'A4'>)
    >>> for bad in ("A26", "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0", "B4"):
    ...     try:
    ...         framework_of(bad)
    ...     except ValueError as e:
    ...         print(str(e)[:40], "A25" in str(e), Framework.A9.api_name in str(e))
    unknown billing framework; one of A1, A2 True True
    unknown billing framework; one of A1, A2 True True
    unknown billing framework; one of A1, A2 True True
    """
    text = value.strip().upper()
    try:
        if not _FRAMEWORK.fullmatch(text):
            raise ValueError
        return frameworks.parse(text)
    except ValueError:
        known = ", ".join(f.value for f in Framework)
        raise ValueError(
            f"unknown billing framework; one of {known} (or its API name, e.g. {Framework.A9.api_name})"
        ) from None


_FRAMEWORK = re.compile(r"A[0-9]{1,3}(?:_[A-Z0-9_]{0,80})?")


def _valid_framework(value: str) -> str:
    return framework_of(value).value


#: ``status``: a label (SERVICE_FAIT, A_VALIDER_1) or a code (07), valid once here (`status_of` it cannot fail).
Status = Annotated[str, AfterValidator(_valid_status)]
#: ``framework``: a billing framework's code (A9) or API name, valid once here (its code).
FrameworkName = Annotated[
    str,
    AfterValidator(_valid_framework),
    WithJsonSchema({"type": "string", "examples": ["A9", "A9_FACTURE_SOUSTRAITANT"], "maxLength": 100}),
]
#: ``since``: an ISO 8601 time, in UTC once validated.
Since = Annotated[dt.datetime, AfterValidator(aware_utc)]


def flow_status_of(value: str) -> FlowStatus:
    """A flow status by name, any case (``IN_INTEGRE``); ValueError naming the statuses known.

    >>> flow_status_of("in_rejete")
    <FlowStatus.IN_REJETE: 'IN_REJETE'>
    """
    try:
        return FlowStatus(value.strip().upper())
    except ValueError:
        raise ValueError(f"unknown flow status; one of {', '.join(s.value for s in FlowStatus)}") from None


def _valid_flow_status(value: str) -> str:
    return flow_status_of(value).value


def _valid_flow_cursor(cursor: str) -> str:
    if cursor and not _FLOW_ID.fullmatch(cursor):
        raise ValueError("invalid cursor: the `next_cursor` of the previous page (a flow id)")
    return cursor


#: ``status`` of a flow: its name (IN_INTEGRE), any case; valid once here.
FlowStatusName = Annotated[
    str, AfterValidator(_valid_flow_status), WithJsonSchema({"type": "string", "enum": [s.value for s in FlowStatus]})
]
#: ``cursor`` of the flow list: the last flow id of the previous page (as `relais flows --cursor`).
FlowCursor = Annotated[str, AfterValidator(_valid_flow_cursor), WithJsonSchema({"type": "string", "maxLength": 13})]


def _valid_cursor(cursor: str) -> str:
    if cursor:
        decode_cursor(cursor)
    return cursor


#: ``cursor``: the ``next_cursor`` of the previous page (a string FastAPI can take from a query; valid once
#: here, so that `decode_cursor` of it cannot fail in the endpoint); empty: the first page, as before.
Cursor = Annotated[str, AfterValidator(_valid_cursor), WithJsonSchema({"type": "string", "maxLength": CURSOR_MAX})]
