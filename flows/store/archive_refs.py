"""The store's part for `relais archive verify`: every archive object the store refers to.

A mixin of ``flows.store.Store`` (which provides ``self.engine``). The store keeps SHA-256 digests of
archived bytes in five places: a flow's bytes (``flows.sha256``), an outbox row's payload (return flows,
MDNs: ``outbox.archive_sha256``), an AS2 message as received or sent and its MDN
(``as2_messages.raw_sha256``, ``mdn_archive_sha256``), and a status return flow
(``status_returns.archive_sha256``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa

from flows.store import tables as t


@dataclasses.dataclass(frozen=True, slots=True)
class ArchiveRef:
    """One reference of the store to an archived object: which table and row, and when it was recorded."""

    sha256: str
    source: str  # "flow" | "outbox" | "as2_raw" | "as2_mdn" | "status_return"
    ref: str  # the row's id
    at: dt.datetime


class ArchiveRefsRepo:
    engine: sa.Engine

    def archive_refs(self, since: dt.datetime | None = None) -> list[ArchiveRef]:
        """Every archived object the store refers to (recorded at or after `since`), oldest first."""
        sources = (
            ("flow", t.flows.c.sha256, t.flows.c.id, t.flows.c.received_at),
            ("outbox", t.outbox.c.archive_sha256, t.outbox.c.id, t.outbox.c.created_at),
            ("as2_raw", t.as2_messages.c.raw_sha256, t.as2_messages.c.id, t.as2_messages.c.received_at),
            ("as2_mdn", t.as2_messages.c.mdn_archive_sha256, t.as2_messages.c.id, t.as2_messages.c.received_at),
            ("status_return", t.status_returns.c.archive_sha256, t.status_returns.c.id, t.status_returns.c.created_at),
        )
        refs: list[ArchiveRef] = []
        with self.engine.connect() as conn:
            for source, digest, ident, at in sources:
                q = sa.select(digest, ident, at).where(digest.is_not(None))
                if since is not None:
                    q = q.where(at >= since)
                for sha256, row_id, when in conn.execute(q.order_by(at, ident)):
                    if when is not None and when.tzinfo is None:
                        when = when.replace(tzinfo=dt.UTC)  # SQLite gives naive UTC datetimes
                    refs.append(ArchiveRef(sha256, source, str(row_id), when))
        refs.sort(key=lambda r: r.at)
        return refs
