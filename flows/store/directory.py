"""The store's directory (the Chorus Pro structures and services), by imported version; and the registered
actors of the billing circuits (titulaires, mandataires, MOE, MOA), versioned the same way.

A mixin of ``flows.store.Store`` (which provides ``self.engine``); split out to keep each module small.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flows.domain.structures import Directory, RegisteredActor, Structure
from flows.store import tables as t
from flows.store.records import PAGE


class DirectoryRepo:
    """Imported directory versions."""

    engine: sa.Engine

    def import_directory(self, version: str, source_sha256: str, structures: Sequence[Structure]) -> None:
        with self.engine.begin() as conn:
            if conn.execute(
                sa.select(t.directory_versions.c.version).where(t.directory_versions.c.version == version)
            ).first():
                raise ValueError(f"directory version {version!r} is already imported")
            conn.execute(
                sa.insert(t.directory_versions).values(
                    version=version,
                    imported_at=dt.datetime.now(dt.UTC),
                    source_sha256=source_sha256,
                    structures=len(structures),
                )
            )
            for i in range(0, len(structures), PAGE):
                chunk = structures[i : i + PAGE]
                conn.execute(
                    sa.insert(t.structures),
                    [
                        {
                            "version": version,
                            "siret": s.siret,
                            "name": s.name,
                            "active": s.active,
                            "service_code_required": s.service_code_required,
                            "ej_required": s.ej_required,
                            "ej_or_service": s.ej_or_service,
                            "payment_status_not_reported": s.payment_status_not_reported,
                            "receives_by_edi": s.receives_by_edi,
                            "frameworks": " ".join(sorted(s.frameworks, key=_code_order))
                            if s.frameworks is not None
                            else None,
                        }
                        for s in chunk
                    ],
                )
                services = [
                    {"version": version, "siret": s.siret, "code": code, "name": name, "active": active}
                    for s in chunk
                    for code, (name, active) in s.services.items()
                ]
                if services:
                    conn.execute(sa.insert(t.services), services)

    def directory_versions(self) -> list[tuple[str, dt.datetime, int]]:
        q = sa.select(t.directory_versions).order_by(t.directory_versions.c.imported_at.desc())
        with self.engine.connect() as conn:
            return [(r["version"], r["imported_at"], r["structures"]) for r in conn.execute(q).mappings()]

    def load_directory(self, version: str | None = None) -> Directory | None:
        """The directory at `version` (the latest import when None), or None when none was imported."""
        with self.engine.connect() as conn:
            if version is None:
                version = _latest_version(conn)
                if version is None:
                    return None
            services: dict[str, dict[str, tuple[str, bool]]] = {}
            for r in conn.execute(sa.select(t.services).where(t.services.c.version == version)).mappings():
                services.setdefault(r["siret"], {})[r["code"]] = (r["name"], bool(r["active"]))
            structures = {
                r["siret"]: _structure(r, services.get(r["siret"], {}))
                for r in conn.execute(sa.select(t.structures).where(t.structures.c.version == version)).mappings()
            }
        return Directory(version, structures)

    def structure_flags(self, siret: str) -> Structure | None:
        """One structure of the latest directory version, with its flags (``payment_status_not_reported``,
        ``receives_by_edi``...); None when no directory was imported or that version does not list it."""
        s, v = t.structures.c, t.services.c
        with self.engine.connect() as conn:
            version = _latest_version(conn)
            if version is None:
                return None
            r = conn.execute(sa.select(t.structures).where(s.version == version, s.siret == siret)).mappings().first()
            if r is None:
                return None
            services = {
                row["code"]: (row["name"], bool(row["active"]))
                for row in conn.execute(sa.select(t.services).where(v.version == version, v.siret == siret)).mappings()
            }
        return _structure(r, services)


class ActorsRepo:
    """Registered actors (`RegisteredActor`), by version: each import or addition is a new version."""

    engine: sa.Engine

    def import_actors(self, actors: Sequence[RegisteredActor], source_sha256: str) -> str:
        """A new version holding exactly `actors` (an imported file: it replaces the list); its name."""
        with self.engine.begin() as conn:
            return _new_actor_version(conn, actors, source_sha256)

    def add_actor(self, actor: RegisteredActor) -> str:
        """A new version: the latest one's actors and `actor` (replacing the same SIRET in the same role,
        e.g. a new name); its name. Additions are serialised: none is lost to a concurrent one."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # one addition at a time: each builds on the previous
                conn.execute(sa.text("LOCK TABLE actor_versions IN SHARE ROW EXCLUSIVE MODE"))
            else:  # SQLite: take the write lock before reading the latest version
                conn.execute(sa.update(t.actor_versions).where(t.actor_versions.c.version == "").values(actors=0))
            current = _actors(conn, _latest_actor_version(conn))
            kept = [a for a in current if (a.siret, a.role) != (actor.siret, actor.role)]
            digest = hashlib.sha256(f"{actor.siret};{actor.name};{actor.role}".encode()).hexdigest()
            return _new_actor_version(conn, [*kept, actor], digest)

    def actors(self) -> list[RegisteredActor]:
        """The registered actors of the latest version, by SIRET then role (empty: none registered)."""
        with self.engine.connect() as conn:
            return _actors(conn, _latest_actor_version(conn))

    def find_actor(self, siret: str) -> list[RegisteredActor]:
        """The latest version's registrations of `siret` (one per role; empty: not a registered actor)."""
        with self.engine.connect() as conn:
            return _actors(conn, _latest_actor_version(conn), siret=siret)

    def actor_versions(self) -> list[tuple[str, dt.datetime, int]]:
        """(version, imported at, actors), newest first."""
        v = t.actor_versions.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(v.version, v.imported_at, v.actors).order_by(*_NEWEST)).all()
        return [(r[0], r[1], r[2]) for r in rows]


_NEWEST = (t.actor_versions.c.imported_at.desc(), t.actor_versions.c.version.desc())


def _latest_actor_version(conn: sa.Connection) -> str | None:
    return conn.execute(sa.select(t.actor_versions.c.version).order_by(*_NEWEST).limit(1)).scalar()


def _actors(conn: sa.Connection, version: str | None, *, siret: str | None = None) -> list[RegisteredActor]:
    if version is None:
        return []
    a = t.actors.c
    q = sa.select(a.siret, a.name, a.role).where(a.version == version).order_by(a.siret, a.role)
    if siret is not None:
        q = q.where(a.siret == siret)
    return [RegisteredActor(r[0], r[1], r[2]) for r in conn.execute(q).all()]


def _new_actor_version(conn: sa.Connection, actors: Sequence[RegisteredActor], source_sha256: str) -> str:
    now = dt.datetime.now(dt.UTC)
    version = f"{now:%Y%m%dT%H%M%S%fZ}-{source_sha256[:8]}"
    conn.execute(
        sa.insert(t.actor_versions).values(
            version=version, imported_at=now, source_sha256=source_sha256, actors=len(actors)
        )
    )
    if actors:
        conn.execute(
            sa.insert(t.actors),
            [{"version": version, "siret": a.siret, "name": a.name, "role": a.role} for a in actors],
        )
    return version


def _latest_version(conn: sa.Connection) -> str | None:
    return conn.execute(
        sa.select(t.directory_versions.c.version)
        .order_by(t.directory_versions.c.imported_at.desc(), t.directory_versions.c.version.desc())
        .limit(1)
    ).scalar()


def _structure(r: Any, services: dict[str, tuple[str, bool]]) -> Structure:
    return Structure(
        siret=r["siret"],
        name=r["name"],
        active=bool(r["active"]),
        service_code_required=bool(r["service_code_required"]),
        ej_required=bool(r["ej_required"]),
        ej_or_service=bool(r["ej_or_service"]),
        services=services,
        payment_status_not_reported=bool(r["payment_status_not_reported"]),
        receives_by_edi=bool(r["receives_by_edi"]),
        frameworks=frozenset(r["frameworks"].split()) if r["frameworks"] is not None else None,
    )


def _code_order(code: str) -> tuple[int, str]:
    """A1, A2 ... A25 in their order."""
    return (int(code[1:]) if code[1:].isdigit() else 0, code)
