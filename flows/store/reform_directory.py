"""The store's reform directory (annuaire of the 2026 reform), by imported version: its lines and what the
XP Z12-013 Directory Service returns of them (legal units, facilities, routing codes).

A mixin of ``flows.store.Store`` (which provides ``self.engine``); its own module (``directory.py`` holds the
public structures and the registered actors). Every read is on the latest version. The routing look-up is
one query on the primary key (version, addressing identifier): O(log n) whatever the directory's size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from flows.domain.reform_directory import (
    Address,
    DirectoryLine,
    Facility,
    LegalUnit,
    Platform,
    PostalAddress,
    RoutingCode,
)
from flows.store import tables as t

CHUNK = 5000
#: The tables a search reads, by the Directory Service's resource name.
TABLES = {
    "siren": t.reform_legal_units,
    "siret": t.reform_facilities,
    "routing-code": t.reform_routing_codes,
    "directory-line": t.reform_lines,
}
#: A filter on the address lines of a facility reads these three columns.
ADDRESS_LINES = "address_lines"
Filter = tuple[str, str, str]  # (column, op: strict | contains | startWith, value)


class ReformDirectoryRepo:
    """Imported versions of the reform's directory."""

    engine: sa.Engine

    def import_reform_directory(
        self,
        version: str,
        source_sha256: str,
        lines: Sequence[DirectoryLine],
        legal_units: Iterable[LegalUnit] = (),
        facilities: Iterable[Facility] = (),
        routing_codes: Iterable[RoutingCode] = (),
    ) -> None:
        """Store one version, whole or not at all (one transaction); ValueError when it is already imported."""
        with self.engine.begin() as conn:
            v = t.reform_directory_versions.c
            if conn.execute(sa.select(v.version).where(v.version == version)).first():
                raise ValueError(f"la version {version!r} de l'annuaire est déjà importée (already imported)")
            conn.execute(
                sa.insert(t.reform_directory_versions).values(
                    version=version, imported_at=dt.datetime.now(dt.UTC), source_sha256=source_sha256, lines=len(lines)
                )
            )
            _bulk(conn, t.reform_lines, (_line_row(version, ln) for ln in lines))
            _bulk(conn, t.reform_legal_units, (_unit_row(version, u) for u in legal_units))
            _bulk(conn, t.reform_facilities, (_facility_row(version, f) for f in facilities))
            _bulk(conn, t.reform_routing_codes, (_code_row(version, c) for c in routing_codes))

    def reform_versions(self) -> list[tuple[str, dt.datetime, int]]:
        """(version, imported at, lines), newest first."""
        v = t.reform_directory_versions.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(v.version, v.imported_at, v.lines).order_by(*_NEWEST)).all()
        return [(r[0], r[1], r[2]) for r in rows]

    def reform_version(self) -> str | None:
        """The latest imported version (None: none was)."""
        with self.engine.connect() as conn:
            return _latest(conn)

    def reform_lines(self, identifiers: Sequence[str]) -> list[DirectoryLine]:
        """The latest version's lines of these addressing identifiers (the routing look-up)."""
        if not identifiers:
            return []
        c = t.reform_lines.c
        with self.engine.connect() as conn:
            version = _latest(conn)
            if version is None:
                return []
            q = sa.select(t.reform_lines).where(c.version == version, c.addressing_identifier.in_(list(identifiers)))
            return [_line(r) for r in conn.execute(q).mappings()]

    def reform_siren_known(self, siren: str) -> bool:
        """Whether the latest version has any line for `siren`."""
        c = t.reform_lines.c
        with self.engine.connect() as conn:
            version = _latest(conn)
            if version is None:
                return False
            q = sa.select(c.addressing_identifier).where(c.version == version, c.siren == siren).limit(1)
            return conn.execute(q).first() is not None

    def reform_get(self, resource: str, **key: str) -> dict[str, Any] | None:
        """One row of `resource` (`TABLES`) of the latest version by its key columns, as a dict; None when absent."""
        table = TABLES[resource]
        with self.engine.connect() as conn:
            version = _latest(conn)
            if version is None:
                return None
            q = sa.select(table).where(table.c.version == version, *(table.c[k] == v for k, v in key.items()))
            row = conn.execute(q).mappings().first()
        return dict(row) if row is not None else None

    def reform_search(
        self,
        resource: str,
        filters: Sequence[Filter],
        sorting: Sequence[tuple[str, bool]],
        limit: int,
        offset: int,
    ) -> tuple[int, list[dict[str, Any]]]:
        """(total matching, the rows of this page) of `resource` in the latest version. `filters` and
        `sorting` ((column, descending)) name the table's columns (the API maps the contract's names)."""
        table = TABLES[resource]
        with self.engine.connect() as conn:
            version = _latest(conn)
            if version is None:
                return 0, []
            where = [table.c.version == version, *(_condition(table, f, version) for f in filters)]
            total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar_one()
            keys = [c for c in table.primary_key.columns if c.name != "version"]
            order = [table.c[name].desc() if desc else table.c[name].asc() for name, desc in sorting]
            q = sa.select(table).where(*where).order_by(*order, *keys).limit(limit).offset(offset)
            rows = [dict(r) for r in conn.execute(q).mappings()]
        return int(total), rows

    def reform_units(self, sirens: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The latest version's legal units of these SIRENs (for the ``include`` of a search)."""
        return self._by_key(t.reform_legal_units, "siren", sirens)

    def reform_facilities(self, sirets: Iterable[str]) -> dict[str, dict[str, Any]]:
        return self._by_key(t.reform_facilities, "siret", sirets)

    def _by_key(self, table: sa.Table, column: str, values: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = sorted({v for v in values if v})
        if not wanted:
            return {}
        with self.engine.connect() as conn:
            version = _latest(conn)
            q = sa.select(table).where(table.c.version == version, table.c[column].in_(wanted))
            return {r[column]: dict(r) for r in conn.execute(q).mappings()}


_NEWEST = (t.reform_directory_versions.c.imported_at.desc(), t.reform_directory_versions.c.version.desc())


def _latest(conn: sa.Connection) -> str | None:
    return conn.execute(sa.select(t.reform_directory_versions.c.version).order_by(*_NEWEST).limit(1)).scalar()


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _condition(table: sa.Table, f: Filter, version: str) -> sa.ColumnElement[bool]:
    """A filter: strict is equality; contains and startWith ignore case [choice] (docs/reform.md §4). A column
    ``facility.<name>`` filters a routing code by its facility's (the facility of its SIRET)."""
    column, op, value = f
    if column.startswith("facility."):
        fac = t.reform_facilities
        inner = _condition(fac, (column.removeprefix("facility."), op, value), version)
        return table.c.siret.in_(sa.select(fac.c.siret).where(fac.c.version == version, inner))
    columns = (
        [table.c.address_line1, table.c.address_line2, table.c.address_line3]
        if column == ADDRESS_LINES
        else [table.c[column]]
    )
    if op == "strict":
        return sa.or_(*(c == value for c in columns))
    pattern = f"%{_like(value.lower())}%" if op == "contains" else f"{_like(value.lower())}%"
    return sa.or_(*(sa.func.lower(c).like(pattern, escape="\\") for c in columns))


def _bulk(conn: sa.Connection, table: sa.Table, rows: Iterable[dict[str, Any]]) -> None:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK:
            conn.execute(sa.insert(table), chunk)
            chunk = []
    if chunk:
        conn.execute(sa.insert(table), chunk)


def _line_row(version: str, ln: DirectoryLine) -> dict[str, Any]:
    a = ln.address
    return {
        "version": version,
        "addressing_identifier": a.identifier,
        "siren": a.siren,
        "siret": a.siret,
        "routing_identifier": a.routing_identifier,
        "suffix": a.suffix,
        "platform_id": ln.platform.id,
        "platform_name": ln.platform.name,
        "platform_type": ln.platform.type,
        "status": ln.status,
        "effective_from": ln.effective_from,
        "effective_to": ln.effective_to,
    }


def _line(r: Any) -> DirectoryLine:
    return DirectoryLine(
        Address(r["siren"], r["siret"], r["routing_identifier"], r["suffix"]),
        Platform(r["platform_id"], r["platform_name"], r["platform_type"]),
        r["status"],
        r["effective_from"],
        r["effective_to"],
    )


def line_of(row: dict[str, Any]) -> DirectoryLine:
    """A `DirectoryLine` of a row `reform_get` or `reform_search` returned."""
    return _line(row)


def _unit_row(version: str, u: LegalUnit) -> dict[str, Any]:
    return {
        "version": version,
        "siren": u.siren,
        "business_name": u.business_name,
        "entity_type": u.entity_type,
        "status": u.status,
    }


def _facility_row(version: str, f: Facility) -> dict[str, Any]:
    a: PostalAddress = f.address
    return {
        "version": version,
        "siret": f.siret,
        "siren": f.siret[:9],
        "name": f.name,
        "facility_type": f.facility_type,
        "status": f.status,
        "address_line1": a.line1,
        "address_line2": a.line2,
        "address_line3": a.line3,
        "postal_code": a.postal_code,
        "subdivision": a.subdivision,
        "locality": a.locality,
        "country": a.country,
    }


def _code_row(version: str, c: RoutingCode) -> dict[str, Any]:
    return {
        "version": version,
        "siret": c.siret,
        "routing_identifier": c.routing_identifier,
        "name": c.name,
        "status": c.status,
        "identifier_type": c.identifier_type,
        "manages_legal_commitment": c.manages_legal_commitment,
    }
