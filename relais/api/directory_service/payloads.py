"""Store rows as the Directory Service's payloads (`directory-service-1.3.0.json`): legal units, facilities,
routing codes, directory lines, with ``fields`` (the members kept) and ``include`` (the related resources)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flows.domain import reform_directory as rd
from flows.store.reform_directory import line_of


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Without the members that are None (the contract's members are optional, never null)."""
    return {k: v for k, v in d.items() if v is not None and v != {}}


def _keep(payload: dict[str, Any], fields: list[str] | None, always: tuple[str, ...] = ()) -> dict[str, Any]:
    if fields is None:
        return payload
    return {k: v for k, v in payload.items() if k in fields or k in always}


def address(row: dict[str, Any]) -> dict[str, Any]:
    return _clean(
        {
            "addressLine1": row.get("address_line1"),
            "addressLine2": row.get("address_line2"),
            "addressLine3": row.get("address_line3"),
            "postalCode": row.get("postal_code"),
            "countrySubdivision": row.get("subdivision"),
            "locality": row.get("locality"),
            "countryCode": row.get("country"),
        }
    )


def legal_unit(row: dict[str, Any], fields: list[str] | None = None) -> dict[str, Any]:
    payload = _clean(
        {
            "siren": row["siren"],
            "businessName": row["business_name"],
            "entityType": row["entity_type"],
            "administrativeStatus": row["status"],
        }
    )
    return _keep(payload, fields)


def facility(
    row: dict[str, Any], fields: list[str] | None = None, unit: dict[str, Any] | None = None
) -> dict[str, Any]:
    payload = _clean(
        {
            "siret": row["siret"],
            "siren": row["siren"],
            "name": row["name"],
            "facilityType": row["facility_type"],
            "administrativeStatus": row["status"],
            "address": address(row),
        }
    )
    payload = _keep(payload, fields)
    if unit is not None:
        payload["legalUnit"] = legal_unit(unit)
    return payload


def _included_facility(row: dict[str, Any]) -> dict[str, Any]:
    f = facility(row)
    return {k: v for k, v in f.items() if k != "legalUnit"}


def routing_code(
    row: dict[str, Any],
    fields: list[str] | None = None,
    unit: dict[str, Any] | None = None,
    fac: dict[str, Any] | None = None,
) -> dict[str, Any]:
    payload = _clean(
        {
            "routingIdentifier": row["routing_identifier"],
            "siret": row["siret"],
            "routingIdentifierType": row["identifier_type"],
            "routingCodeName": row["name"],
            "managesLegalCommitmentCode": bool(row["manages_legal_commitment"]),
            "administrativeStatus": row["status"],
        }
    )
    payload = _keep(payload, fields)
    if unit is not None:
        payload["legalUnit"] = legal_unit(unit)
    if fac is not None:
        payload["facility"] = _included_facility(fac)
    return payload


def line_status(line: rd.DirectoryLine, on: dt.date, single: bool) -> str:
    """A line's status as answered: Enabled when effective (an Upcoming line whose date has come), else
    Upcoming (a search only: the single-line answer knows Enabled and Disabled), else Disabled."""
    if line.effective(on):
        return rd.ENABLED
    if not single and line.status == rd.UPCOMING and (line.effective_from is None or on < line.effective_from):
        return rd.UPCOMING
    return rd.DISABLED


def directory_line(
    row: dict[str, Any],
    on: dt.date,
    *,
    single: bool,
    fields: list[str] | None = None,
    unit: dict[str, Any] | None = None,
    fac: dict[str, Any] | None = None,
    code: dict[str, Any] | None = None,
) -> dict[str, Any]:
    line = line_of(row)
    payload = _clean(
        {
            "addressingIdentifier": row["addressing_identifier"],
            "platformType": row["platform_type"],
            "directoryLineStatus": line_status(line, on, single),
            "siren": row["siren"],
            "siret": row["siret"],
            "routingIdentifier": row["routing_identifier"],
            "addressingSuffix": row["suffix"],
        }
    )
    payload = _keep(payload, fields, always=("platformType", "directoryLineStatus"))
    if code is not None:
        payload["routingCode"] = _clean(
            {
                "routingIdentifier": code["routing_identifier"],
                "routingIdentifierType": code["identifier_type"],
                "routingCodeName": code["name"],
                "managesLegalCommitment": bool(code["manages_legal_commitment"]),
                "administrativeStatus": code["status"],
            }
        )
    if unit is not None:
        payload["legalUnit"] = legal_unit(unit)
    if fac is not None:
        payload["facility"] = _included_facility(fac)
    return payload
