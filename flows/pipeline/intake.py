"""The one way a file becomes a flow, whatever channel brought it: `Intake.ingest`.

Every channel (folder scan, SFTP poll, hosted SFTP upload, AS2 message) hands
its bytes to `Intake.ingest`, so all of them follow the same two rules:

- **Archive first.** The bytes are written to the write-once archive (and
  synced) before the flow is recorded: a recorded flow always has its bytes.
- **One idempotence rule.** A file is identified by (partner, name, size,
  SHA-256). When a flow with that key was recorded *after the file was
  written* (`Arrival.written_at` earlier than the flow's ``received_at`` plus
  one second, the store's resolution), the file is that flow's own, left
  behind by an interruption between recording and clean-up (a crash, a lost
  connection): it is not recorded again, and the channel only cleans up. The
  same bytes written again later are a resend: a new flow, which the pipeline
  answers as a duplicate (RLS-T11). A channel that cannot tell when its file
  was written passes ``written_at=None``: any flow with the key is its own.

A flow id is never given twice, even by a store restored from an older backup (docs/operations.md):
each id taken is also marked in the archive (`id_marker`, a small object whose SHA-256 follows from
the id), which a restore of the store does not roll back; an id whose marker exists is skipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from archive import Archive, ArchivedObject
from flows.domain import log
from flows.domain.model import Channel, Flow
from flows.store import Store
from flows.store.api import IdempotencyKeyTaken

_log = log.get("relais.intake")
#: The store keeps ``received_at`` to the second on some databases: the margin of the idempotence rule.
RESOLUTION = dt.timedelta(seconds=1)


@dataclasses.dataclass(frozen=True, slots=True)
class Arrival:
    """Who sent a file, by which channel, under which name, and when it was written at the source."""

    partner: str
    channel: Channel
    name: str
    written_at: dt.datetime | None = None  # None: unknown (every recorded flow with the key is its own)


@dataclasses.dataclass(frozen=True, slots=True)
class Ingested:
    flow: Flow
    created: bool  # False: the file already had this flow (see the module doc)


def id_marker(flow_id: str) -> bytes:
    """The archived object that says `flow_id` was given (its SHA-256 is known from the id alone).

    >>> id_marker("CPP0000000007")
    b'relais flow id CPP0000000007\\n'
    """
    return f"relais flow id {flow_id}\n".encode()


def is_own_flow(flow: Flow, written_at: dt.datetime | None) -> bool:
    """Whether a recorded flow with the file's key is this very file's (the idempotence rule).

    >>> import datetime as dt
    >>> f = Flow(id="CPP1", partner="p", channel=Channel.FOLDER, original_name="a.xml", size=1, sha256="x",
    ...          received_at=dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc))
    >>> is_own_flow(f, dt.datetime(2026, 1, 1, 11, 59, 30, tzinfo=dt.timezone.utc))  # written, then recorded
    True
    >>> is_own_flow(f, dt.datetime(2026, 1, 1, 12, 5, 0, tzinfo=dt.timezone.utc))  # written again later
    False
    >>> is_own_flow(f, None)
    True
    """
    if written_at is None:
        return True
    received = flow.received_at
    if received.tzinfo is None:
        received = received.replace(tzinfo=dt.UTC)
    if written_at.tzinfo is None:
        written_at = written_at.replace(tzinfo=dt.UTC)
    return written_at < received + RESOLUTION


def _new_flow(flow_id: str, arrival: Arrival, obj: ArchivedObject) -> Flow:
    """The flow recorded for `arrival`'s file, archived as `obj`, under a new id."""
    return Flow(
        id=flow_id,
        partner=arrival.partner,
        channel=arrival.channel,
        original_name=arrival.name,
        size=obj.size,
        sha256=obj.sha256,
    )


def _log_received(flow: Flow) -> None:
    _log.info(
        "flow.received",
        flow_id=flow.id,
        partner=flow.partner,
        channel=str(flow.channel),
        name=flow.original_name,
        size=flow.size,
        sha256=flow.sha256,
    )


@dataclasses.dataclass
class Intake:
    """Archive-first, idempotent recording of arriving files (the module doc gives the rules)."""

    store: Store
    archive: Archive
    staging_dir: Path

    def known(self, arrival: Arrival, size: int, sha256: str) -> Flow | None:
        """The flow this file already has, if any (checked before fetching its bytes again)."""
        flow = self.store.find_flow(arrival.partner, arrival.name, size, sha256, latest=True)
        if flow is not None and is_own_flow(flow, arrival.written_at) and self.archive.exists(sha256):
            return flow
        return None

    def ingest(
        self, arrival: Arrival, content: Path | bytes | BinaryIO, *, idempotency_key: str | None = None
    ) -> Ingested:
        """Archive `content` (a file, bytes or a binary stream), then record its flow unless it has one.

        With an `idempotency_key` (the mode API's), the flow is recorded together with the key's claim
        (`Store.create_api_flow`): when another upload of the partner holds the key, nothing is recorded
        and `flows.store.api.IdempotencyKeyTaken` names the flow that does."""
        if isinstance(content, Path):
            obj = self.archive.put_file(content)
        elif isinstance(content, bytes):
            obj = self.archive.put_bytes(content)
        else:
            obj = self.archive.put_stream(content)
        return self.ingest_archived(arrival, obj, idempotency_key=idempotency_key)

    def ingest_archived(self, arrival: Arrival, obj: ArchivedObject, *, idempotency_key: str | None = None) -> Ingested:
        """Record the flow of bytes already archived as `obj` (the same rule as `ingest`)."""
        existing = self._own_flow(arrival, obj)
        if existing is not None:
            if idempotency_key is not None:  # the key names this flow from now on, unless another holds it
                holder = self.store.record_api_upload(arrival.partner, idempotency_key, existing.id, obj.sha256)
                if holder[0] != existing.id:
                    raise IdempotencyKeyTaken(*holder)
            _log.info(
                "intake.already_recorded",
                partner=arrival.partner,
                channel=str(arrival.channel),
                name=arrival.name,
                flow_id=existing.id,
                sha256=obj.sha256,
            )
            return Ingested(existing, created=False)
        flow = _new_flow(self._new_ids(1)[0], arrival, obj)
        if idempotency_key is None:
            self.store.create_flow(flow)
        else:
            self.store.create_api_flow(flow, idempotency_key)  # or IdempotencyKeyTaken: nothing recorded
        _log_received(flow)
        return Ingested(flow, created=True)

    def ingest_many(self, items: Sequence[tuple[Arrival, ArchivedObject]]) -> list[Ingested]:
        """Record the flows of many files already archived (`ingest_archived`'s rule for each), their ids
        marked in the archive with grouped syncs (`Archive.put_many`) and their rows written in one
        transaction: archive first still (bytes and markers are durable before any row exists)."""
        out: list[Ingested | None] = []
        new: list[tuple[int, Arrival, ArchivedObject]] = []
        keys: set[tuple[str, str, int, str]] = set()
        latest = self.store.find_latest_flows((a.partner, a.name, o.size, o.sha256) for a, o in items)  # one query
        for arrival, obj in items:
            key = (arrival.partner, arrival.name, obj.size, obj.sha256)
            if key in keys:  # the same file twice in this batch: the second is seen once the first is recorded
                out.append(None)
                continue
            if (existing := latest.get(key)) is not None and is_own_flow(existing, arrival.written_at):
                out.append(self.ingest_archived(arrival, obj))  # already recorded: says so, records nothing
                continue
            keys.add(key)
            new.append((len(out), arrival, obj))
            out.append(None)
        ids = self._new_ids(len(new))
        flows = [_new_flow(flow_id, arrival, obj) for flow_id, (_, arrival, obj) in zip(ids, new, strict=True)]
        self.store.create_flows(flows)
        for flow, (at, _, _) in zip(flows, new, strict=True):
            out[at] = Ingested(flow, created=True)
            _log_received(flow)
        return [got if got is not None else self.ingest_archived(*items[i]) for i, got in enumerate(out)]

    def _own_flow(self, arrival: Arrival, obj: ArchivedObject) -> Flow | None:
        """The recorded flow that is this very file's (the idempotence rule), if any."""
        existing = self.store.find_flow(arrival.partner, arrival.name, obj.size, obj.sha256, latest=True)
        return existing if existing is not None and is_own_flow(existing, arrival.written_at) else None

    def _new_ids(self, n: int) -> list[str]:
        """`n` flow ids no flow ever had (the module doc: an id marked in the archive is skipped), marked in
        the archive together (`Archive.put_many`)."""
        ids: list[str] = []
        while len(ids) < n:
            fresh = []
            for flow_id in self.store.next_flow_ids(n - len(ids)):
                if self.archive.exists(hashlib.sha256(id_marker(flow_id)).hexdigest()):
                    _log.warning(
                        "intake.flow_id_skipped",
                        flow_id=flow_id,
                        detail="this id was given before (the archive says so) to a flow the store does not "
                        "know: the store was restored from an older backup; the id is not given again",
                    )
                    continue
                fresh.append(flow_id)
            self.archive.put_many([id_marker(f) for f in fresh])
            ids.extend(fresh)
        return ids
