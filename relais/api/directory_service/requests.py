"""The Directory Service's requests (AFNOR XP Z12-013 Annex B, `directory-service-1.3.0.json`), checked by hand
so that every refusal has the contract's `Error` shape: the resources, their filters (with the operators
the contract allows), sortable fields, ``fields`` and ``include``; ``limit`` / ``ignore`` pagination.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

DEFAULT_LIMIT = 50  # [choice]: no limit given
MAX_LIMIT = 1000  # [choice]: a larger limit is refused (400), a page is never unbounded
_DIGITS = re.compile(r"[0-9]*")


class ServiceError(Exception):
    """A refusal: its HTTP status and the contract's ``Error`` (errorCode, errorMessage)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def bad(message: str) -> ServiceError:
    return ServiceError(400, "INVALID_REQUEST", message)


@dataclasses.dataclass(frozen=True)
class FilterSpec:
    column: str  # the store's column (flows/store/reform_directory.py)
    ops: tuple[str, ...]
    max_length: int
    digits: bool = False
    enum: tuple[str, ...] = ()


STRICT = ("strict",)
CSS = ("contains", "strict", "startWith")
CS = ("contains", "strict")


@dataclasses.dataclass(frozen=True)
class Resource:
    name: str  # flows.store.reform_directory.TABLES
    fields: dict[str, str]  # contract field -> store column ("" : computed)
    filters: dict[str, FilterSpec]
    includes: tuple[str, ...]


SIREN = Resource(
    "siren",
    {
        "siren": "siren",
        "businessName": "business_name",
        "entityType": "entity_type",
        "administrativeStatus": "status",
        "instructions": "",
    },
    {
        "siren": FilterSpec("siren", STRICT, 9, digits=True),
        "businessName": FilterSpec("business_name", CSS, 150),
        "entityType": FilterSpec("entity_type", STRICT, 20, enum=("Public", "PrivateVatRegistered")),
        "administrativeStatus": FilterSpec("status", STRICT, 1, enum=("A", "C")),
    },
    (),
)
SIRET = Resource(
    "siret",
    {
        "siret": "siret",
        "siren": "siren",
        "name": "name",
        "facilityType": "facility_type",
        "administrativeStatus": "status",
        "siretInstructions": "",
        "address": "address_line1",
        "pmStatus": "",
        "pmOnly": "",
        "managesPaymentStatus": "",
        "managesLegalCommitment": "",
        "managesLegalCommitmentOrService": "",
        "serviceCodeStatus": "",
    },
    {
        "siret": FilterSpec("siret", STRICT, 14, digits=True),
        "siren": FilterSpec("siren", STRICT, 9, digits=True),
        "facilityType": FilterSpec("facility_type", STRICT, 1, enum=("P", "S")),
        "name": FilterSpec("name", CSS, 100),
        "addressLines": FilterSpec("address_lines", ("contains", "startWith"), 600),
        "postalCode": FilterSpec("postal_code", ("startWith", "strict"), 5, digits=True),
        "countrySubdivision": FilterSpec("subdivision", STRICT, 255),
        "locality": FilterSpec("locality", CSS, 100),
        "administrativeStatus": FilterSpec("status", STRICT, 1, enum=("A", "C")),
    },
    ("siren",),
)
ROUTING_CODE = Resource(
    "routing-code",
    {
        "siret": "siret",
        "routingIdentifierType": "identifier_type",
        "routingCodeName": "name",
        "routingIdentifier": "routing_identifier",
        "managesLegalCommitmentCode": "manages_legal_commitment",
        "administrativeStatus": "status",
        "address": "",
    },
    {
        "routingIdentifier": FilterSpec("routing_identifier", CS, 100),
        "siret": FilterSpec("siret", STRICT, 14, digits=True),
        "routingCodeName": FilterSpec("name", CS, 100),
        "administrativeStatus": FilterSpec("status", STRICT, 1, enum=("A", "C")),
        "addressLines": FilterSpec("facility.address_lines", ("contains", "startWith"), 600),
        "postalCode": FilterSpec("facility.postal_code", ("startWith", "strict"), 5, digits=True),
        "locality": FilterSpec("facility.locality", CSS, 100),
    },
    ("siren", "siret"),
)
DIRECTORY_LINE = Resource(
    "directory-line",
    {
        "addressingIdentifier": "addressing_identifier",
        "siren": "siren",
        "siret": "siret",
        "routingIdentifier": "routing_identifier",
        "addressingSuffix": "suffix",
    },
    {
        "addressingIdentifier": FilterSpec("addressing_identifier", CS, 125),
        "siren": FilterSpec("siren", STRICT, 9, digits=True),
        "siret": FilterSpec("siret", STRICT, 14, digits=True),
        "routingIdentifier": FilterSpec("routing_identifier", CS, 100),
        "addressingSuffix": FilterSpec("suffix", CS, 100),
    },
    ("siren", "siret", "routingCode"),
)
#: The contract's sortable fields that are not a column of their own.
_UNSORTABLE = {
    "instructions",
    "siretInstructions",
    "address",
    "pmStatus",
    "pmOnly",
    "managesPaymentStatus",
    "managesLegalCommitment",
    "managesLegalCommitmentOrService",
    "serviceCodeStatus",
}


@dataclasses.dataclass(frozen=True)
class Search:
    filters: list[tuple[str, str, str]]
    sorting: list[tuple[str, bool]]
    fields: list[str] | None
    include: list[str]
    limit: int
    ignore: int


def names(value: Any, allowed: tuple[str, ...] | list[str], what: str) -> list[str]:
    """A list of names among `allowed` (``fields``, ``include``)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(f"{what} must be a list of strings")
    unknown = [v for v in value if v not in allowed]
    if unknown:
        raise bad(f"{what}: unknown value(s) {', '.join(map(repr, unknown[:5]))} (allowed: {', '.join(allowed)})")
    return list(dict.fromkeys(value))


def query_list(raw: str | None, allowed: tuple[str, ...] | list[str], what: str) -> list[str] | None:
    """A query parameter of the form ``a,b,c`` (``explode: false``); None when absent."""
    if raw is None:
        return None
    return names([v for v in raw.split(",") if v != ""], allowed, what)


def _int(value: Any, what: str, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31 - 1:
        raise bad(f"{what} must be an integer from 0 to 2147483647")
    return value


def parse_search(body: Any, r: Resource) -> Search:
    """A search body for `r` (None or {} : everything, first page)."""
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise bad("the body must be a JSON object")
    unknown = set(body) - {"filters", "sorting", "fields", "include", "limit", "ignore"}
    if any(v is None for v in body.values()):
        raise bad("a member of the body is null")
    if unknown or ("include" in body and not r.includes):
        raise bad(f"unknown member(s): {', '.join(sorted(unknown)) or 'include'}")
    filters: list[tuple[str, str, str]] = []
    raw_filters = body.get("filters") or {}
    if not isinstance(raw_filters, dict):
        raise bad("filters must be an object")
    for key, f in raw_filters.items():
        spec = r.filters.get(key)
        if spec is None:
            raise bad(f"filters: unknown filter {key!r} (allowed: {', '.join(r.filters)})")
        if not isinstance(f, dict) or set(f) - {"op", "value"} or "value" not in f:
            raise bad(f"filters.{key} must be an object with op and value")
        op, value = f.get("op", spec.ops[0] if len(spec.ops) == 1 else "strict"), f.get("value")
        if op not in spec.ops:
            raise bad(f"filters.{key}.op must be one of {', '.join(spec.ops)}")
        if not isinstance(value, str) or len(value) > spec.max_length:
            raise bad(f"filters.{key}.value must be a string of at most {spec.max_length} characters")
        if (spec.digits and not _DIGITS.fullmatch(value)) or (spec.enum and value not in spec.enum):
            raise bad(f"filters.{key}.value is not valid: {value[:50]!r}")
        filters.append((spec.column, op, value))
    sorting: list[tuple[str, bool]] = []
    raw_sorting = body.get("sorting") or []
    if not isinstance(raw_sorting, list):
        raise bad("sorting must be a list")
    for n, s in enumerate(raw_sorting):
        if not isinstance(s, dict) or set(s) - {"field", "order"}:
            raise bad(f"sorting[{n}] must be an object with field and order")
        field, order = s.get("field"), s.get("order", "ascending")
        if field not in r.fields or order not in ("ascending", "descending"):
            raise bad(f"sorting[{n}]: field one of {', '.join(r.fields)}, order ascending or descending")
        if field in _UNSORTABLE or not r.fields[field]:
            continue  # [choice]: a member Relais has no value of sorts nothing (all equal)
        sorting.append((r.fields[field], order == "descending"))
    fields = names(body["fields"], list(r.fields), "fields") if body.get("fields") is not None else None
    include = names(body["include"], r.includes, "include") if body.get("include") is not None else []
    limit = _int(body.get("limit"), "limit", DEFAULT_LIMIT)
    if limit > MAX_LIMIT:
        raise bad(f"limit must be at most {MAX_LIMIT}")
    return Search(filters, sorting, fields, include, limit, _int(body.get("ignore"), "ignore", 0))
