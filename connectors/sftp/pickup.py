"""Pickup from partners' SFTP servers: the SFTP twin of the folder drop zone.

One poll of one partner (``poll``):

1. **List** ``pickup_dir`` (lstat-based: links are never followed). Skipped, with
   the reason in the report and the log: symbolic links and anything not a
   regular file; names unsafe for us (a path separator, ``.``/``..``, control
   or bidi characters, not UTF-8, over 255 characters); temporary names
   (``*.part``, ``*.tmp``, dot-files…: `connectors.folder.dropzone.is_temporary`);
   names that match none of the partner's ``patterns``.
2. **Complete files only.** With a ``done_marker``, ``NAME`` is complete once
   ``NAME<marker>`` exists. Without one, its size and mtime must be unchanged
   across two listings ``settle_seconds`` apart, or across two polls (the
   poller remembers what it saw last time in a `PickupState`).
3. **Claim**: rename ``NAME`` to ``NAME.relais-claimed`` so the partner (and
   another poller) leaves it alone. A server that refuses the rename (permission
   denied) gets the file downloaded in place. A ``*.relais-claimed`` file seen by
   a later poll is ours from a poll that died: it is taken again, first.
4. **Download** to a staging file while hashing (constant memory), then
   **archive** it (archive first), then **record** the flow, unless the store
   already holds a flow of this partner with the same name, size and SHA-256
   (idempotence: a file fetched again after a failed cleanup is not recorded twice).
5. **Only then** move the remote file to ``processed_dir`` (created when
   missing) or delete it (``processed_dir = ""``), and remove its done marker.
   A failure there is logged with the flow id; the file is seen again on the next
   poll, recognised (step 4) and the cleanup retried.

A connection lost mid-download removes the staging file and records nothing;
the remote file stays (under its claimed name) for the next poll. Per-file
problems go to ``PollReport.errors`` and the poll goes on; connection-level
problems (unreachable, host key mismatch, authentication refused, connection
lost) end the poll with ``fatal = True``. ``poll`` never raises for any of these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import fnmatch
import os
import posixpath
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from connectors.folder.dropzone import is_temporary
from connectors.partners import Partner, SftpPickup
from connectors.sftp import client
from connectors.sftp.client import ConnectionLost, RemoteFile, SftpConnection, SftpError
from flows.domain import log
from flows.domain.model import Channel, Flow
from flows.io.atomic import temp_prefix
from flows.pipeline.intake import Arrival, Intake

_log = log.get("relais.sftp.pickup")

CLAIM_SUFFIX = ".relais-claimed"
MAX_NAME_CHARS = 255
DEFAULT_SETTLE_SECONDS = 1.0
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclasses.dataclass
class PollReport:
    """What one poll of one partner did."""

    partner: str
    flows: list[Flow] = dataclasses.field(default_factory=list)  # recorded by this poll
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (remote name, reason)
    errors: list[str] = dataclasses.field(default_factory=list)
    fatal: bool = False  # the poll could not connect, or lost its connection
    already: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (name, flow id) seen again
    bytes: int = 0  # downloaded
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclasses.dataclass
class PickupState:
    """What a poller remembers between polls (in memory, small): per partner, the
    (size, mtime) of each file still waiting, and when the partner was last polled."""

    seen: dict[str, dict[str, tuple[int, int | None]]] = dataclasses.field(default_factory=dict)
    last_poll: dict[str, float] = dataclasses.field(default_factory=dict)

    def due(self, partner: Partner, now: float | None = None) -> bool:
        if partner.sftp is None:
            return False
        last = self.last_poll.get(partner.id)
        now = time.monotonic() if now is None else now
        return last is None or now - last >= partner.sftp.poll_seconds


#: The state of this process's poller (the CLI's --watch loop); tests pass their own.
STATE = PickupState()

Connect = Callable[..., SftpConnection]


def unsafe_reason(name: str) -> str | None:
    """Why a remote file name cannot be taken as is, or None when it is fine.

    >>> [unsafe_reason(n) for n in ("a.xml", "..", "a/b", "x\\ny", "é" * 256)]
    [None, "is '.' or '..'", 'contains a path separator', 'contains control characters', 'longer than 255 characters']
    """
    if name in (".", ".."):
        return "is '.' or '..'"
    if "/" in name or "\\" in name:
        return "contains a path separator"
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "not valid UTF-8"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") or c in _BIDI_CONTROLS for c in name):
        return "contains control characters"
    if len(name) > MAX_NAME_CHARS or len(encoded) > MAX_NAME_CHARS:
        return f"longer than {MAX_NAME_CHARS} characters"
    if not name.strip():
        return "blank"
    return None


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Case-insensitive shell-style match (``*.xml`` takes ``A.XML``)."""
    lowered = name.lower()
    return any(fnmatch.fnmatchcase(lowered, p.lower()) for p in patterns)


@dataclasses.dataclass(frozen=True, slots=True)
class _Candidate:
    entry: RemoteFile
    original: str  # the partner's name (without our claim suffix)
    claimed: bool  # already renamed by an earlier poll of ours


def _printable(name: str) -> str:
    """A name as it can be shown in a one-line report (control characters escaped)."""
    return name if unsafe_reason(name) is None else ascii(name)


class _Poll:
    def __init__(
        self,
        intake: Intake,
        partner: Partner,
        conn: SftpConnection,
        report: PollReport,
        state: PickupState,
        settle_seconds: float,
    ) -> None:
        assert partner.sftp is not None
        self.intake = intake
        self.partner = partner
        self.cfg: SftpPickup = partner.sftp
        self.conn = conn
        self.report = report
        self.state = state
        self.settle = settle_seconds
        self._processed_ready = False

    def path(self, name: str) -> str:
        return posixpath.join(self.cfg.pickup_dir or ".", name)

    def skip(self, name: str, reason: str, level: str = "info", **kw: object) -> None:
        self.report.skipped.append((name, reason))
        getattr(_log, level)("sftp.skipped", name=name, reason=reason, **kw)

    def error(self, message: str, **kw: object) -> None:
        self.report.errors.append(message)
        _log.error("sftp.error", error=message, **kw)

    # ---- listing -------------------------------------------------------------------

    def select(self, entries: list[RemoteFile]) -> tuple[list[_Candidate], list[_Candidate]]:
        """(claimed files of ours, candidates that still need a completeness check)."""
        cfg = self.cfg
        names = {e.name for e in entries}
        marker = cfg.done_marker or None
        claimed: list[_Candidate] = []
        fresh: list[_Candidate] = []
        for e in sorted(entries, key=lambda e: (e.mtime or 0, e.name)):
            reason = unsafe_reason(e.name)
            if reason is not None:
                self.skip(_printable(e.name), f"unsafe name: {reason}", "warning")
                continue
            if e.is_dir:
                continue  # folders (processed/, …) are not files to take
            if e.is_symlink:
                self.skip(e.name, "symbolic link (never followed)", "warning")
                continue
            if not e.is_file:
                self.skip(e.name, "not a regular file", "warning")
                continue
            if e.name.endswith(CLAIM_SUFFIX):
                original = e.name[: -len(CLAIM_SUFFIX)]
                if original and unsafe_reason(original) is None and matches(original, cfg.patterns):
                    claimed.append(_Candidate(e, original, True))
                    continue
            if is_temporary(e.name):
                self.skip(e.name, "temporary name (still being written)", "debug")
                continue
            if marker and e.name.endswith(marker):
                continue  # a done marker, handled with its file
            if not matches(e.name, cfg.patterns):
                self.skip(e.name, "matches none of the partner's patterns", "debug")
                continue
            if marker and e.name + marker not in names:
                self.skip(e.name, f"waiting for its done marker {e.name + marker}", "debug")
                continue
            fresh.append(_Candidate(e, e.name, False))
        return claimed, fresh

    def settled(self, fresh: list[_Candidate]) -> list[_Candidate]:
        """Candidates known to be complete (done marker, or unchanged across listings/polls)."""
        if self.cfg.done_marker:
            return fresh
        seen = self.state.seen.get(self.partner.id, {})
        stable: list[_Candidate] = []
        unsure: list[_Candidate] = []
        for c in fresh:
            (stable if seen.get(c.original) == (c.entry.size, c.entry.mtime) else unsure).append(c)
        now_seen = {c.original: (c.entry.size, c.entry.mtime) for c in unsure}
        if unsure and self.settle > 0:
            time.sleep(self.settle)
            again = {e.name: e for e in self.listing()}
            for c in unsure:
                e = again.get(c.original)
                if e is None:
                    now_seen.pop(c.original, None)
                    self.skip(c.original, "disappeared while settling")
                elif (e.size, e.mtime) == (c.entry.size, c.entry.mtime) and e.is_file:
                    stable.append(c)
                    now_seen.pop(c.original, None)
                else:
                    now_seen[c.original] = (e.size, e.mtime)
                    self.skip(c.original, "still changing (size or mtime)")
        else:
            for c in unsure:
                self.skip(c.original, "first seen: taken once unchanged at the next poll")
        self.state.seen[self.partner.id] = now_seen
        stable.sort(key=lambda c: (c.entry.mtime or 0, c.original))
        return stable

    # ---- one file ------------------------------------------------------------------

    def claim(self, c: _Candidate) -> str | None:
        """The remote path to download (claimed, or in place), None when the file is gone."""
        if c.claimed:
            return self.path(c.entry.name)
        src, dst = self.path(c.original), self.path(c.original + CLAIM_SUFFIX)
        if len((c.original + CLAIM_SUFFIX).encode()) > MAX_NAME_CHARS:
            _log.info("sftp.claim_skipped", name=c.original, detail="name too long to claim: downloading in place")
            return src
        try:
            self.conn.rename(src, dst)
        except FileNotFoundError:
            self.skip(c.original, "disappeared between listing and download", "warning")
            return None
        except PermissionError:
            _log.info("sftp.claim_refused", name=c.original, detail="permission denied: downloading in place")
            return src
        except ConnectionLost:
            raise
        except OSError as e:
            try:
                taken = self.conn.exists(dst)
            except ConnectionLost:
                raise
            except OSError:
                taken = False
            if taken:
                self.skip(c.original, f"cannot claim: {dst} exists (taken first, this one next poll)", "warning")
                return None
            _log.info("sftp.claim_refused", name=c.original, detail=f"{e}: downloading in place")
            return src
        _log.debug("sftp.claimed", name=c.original)
        return dst

    def take(self, c: _Candidate) -> None:
        path = self.claim(c)
        if path is None:
            return
        try:
            st = self.conn.lstat(path)
        except FileNotFoundError:
            self.skip(c.original, "disappeared between listing and download", "warning")
            return
        if not st.is_file:
            self.skip(c.original, "no longer a regular file (never followed)", "warning")
            return
        if not c.claimed and (st.size, st.mtime) != (c.entry.size, c.entry.mtime):
            # Still being written after all: give the name back (when we took it) and wait.
            if path != self.path(c.original):
                try:
                    self.conn.rename(path, self.path(c.original))
                except ConnectionLost:
                    raise
                except OSError:
                    pass  # stays claimed: taken as it is at the next poll
            self.skip(c.original, "changed since it was listed")
            return
        staging_dir = self.intake.staging_dir
        staging_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=staging_dir, prefix=temp_prefix(f"sftp-{self.partner.id}-"))
        staging = Path(tmp)
        try:
            try:
                with os.fdopen(fd, "wb") as out:
                    size, sha256 = self.conn.download(path, out, st.size)
            except FileNotFoundError:
                self.skip(c.original, "disappeared between listing and download", "warning")
                return
            self.report.bytes += size
            if size != st.size:
                self.skip(c.original, f"changed during download ({st.size} bytes listed, {size} read)", "warning")
                return
            written_at = dt.datetime.fromtimestamp(st.mtime, dt.UTC) if st.mtime is not None else None
            arrival = Arrival(self.partner.id, Channel.SFTP, c.original, written_at)
            flow = self.intake.known(arrival, size, sha256)  # flows.pipeline.intake's idempotence rule
            if flow is not None:
                self.report.already.append((c.original, flow.id))
                _log.info(
                    "sftp.already_recorded",
                    name=c.original,
                    flow_id=flow.id,
                    sha256=sha256,
                    detail="picked up before; cleaning up the remote file again",
                )
            else:
                obj = self.intake.archive.put_file(staging)  # archive first
                if (obj.size, obj.sha256) != (size, sha256):
                    raise OSError(
                        f"staging copy of {c.original} changed on local disk "
                        f"({size} bytes {sha256} downloaded, {obj.size} {obj.sha256} archived)"
                    )
                got = self.intake.ingest_archived(arrival, obj)
                flow = got.flow
                if got.created:
                    self.report.flows.append(flow)
                    _log.info("sftp.picked_up", name=c.original, flow_id=flow.id, size=size, sha256=sha256)
                else:
                    self.report.already.append((c.original, flow.id))
        finally:
            staging.unlink(missing_ok=True)
        self.cleanup(path, c.original, flow)

    def cleanup(self, path: str, original: str, flow: Flow) -> None:
        """Move the taken file to processed_dir (or delete it), then remove its done marker."""
        cfg = self.cfg
        try:
            if cfg.processed_dir:
                if not self._processed_ready:
                    self.conn.makedirs(cfg.processed_dir)
                    self._processed_ready = True
                target = posixpath.join(cfg.processed_dir, original)
                try:
                    self.conn.rename(path, target)
                except (ConnectionLost, FileNotFoundError, PermissionError):
                    raise
                except OSError:
                    if not self.conn.exists(target):
                        raise
                    target = posixpath.join(cfg.processed_dir, f"{original}.{flow.id}")
                    self.conn.rename(path, target)  # an older file of the same name is there
                _log.info("sftp.moved", name=original, flow_id=flow.id, to=target)
            else:
                self.conn.remove(path)
                _log.info("sftp.deleted", name=original, flow_id=flow.id)
        except ConnectionLost:
            raise
        except OSError as e:
            message = (
                f"{original}: recorded as flow {flow.id} but left on the server "
                f"({type(e).__name__}: {e}); cleanup is retried at the next poll"
            )
            self.report.errors.append(message)
            _log.error("sftp.cleanup_failed", name=original, flow_id=flow.id, remote=path, error=str(e))
            return
        if cfg.done_marker:
            try:
                self.conn.remove(self.path(original + cfg.done_marker))
            except FileNotFoundError:
                pass
            except ConnectionLost:
                raise
            except OSError as e:
                self.error(
                    f"{original}: done marker not removed ({type(e).__name__}: {e})", name=original, flow_id=flow.id
                )

    # ---- the poll ------------------------------------------------------------------

    def listing(self) -> list[RemoteFile]:
        folder = self.cfg.pickup_dir or "."
        try:
            return self.conn.list_files(folder)
        except SftpError:
            raise
        except OSError as e:
            raise SftpError(f"cannot list the pickup folder {folder!r}: {type(e).__name__}: {e}") from e

    def run(self) -> None:
        entries = self.listing()
        claimed, fresh = self.select(entries)
        todo = claimed + self.settled(fresh)
        for c in todo:
            try:
                with log.bound(remote_name=c.original):
                    self.take(c)
            except ConnectionLost:
                raise
            except Exception as e:  # one file never stops the poller
                _log.exception("sftp.file_failed", name=c.original)
                self.report.errors.append(f"{_printable(c.original)}: {type(e).__name__}: {e}")


@contextlib.contextmanager
def _exclusive(staging_dir: Path, partner_id: str) -> Iterator[bool]:
    """One poll of a partner at a time on this RELAIS_HOME (CLI watch loop, Airflow tasks):
    two pollers would both take over the same claimed file. Yields False when busy."""
    folder = staging_dir
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".sftp-{partner_id}.lock", "a+b") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def poll(
    intake: Intake,
    partner: Partner,
    *,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    state: PickupState | None = None,
    timeout: float = 15.0,
    connect: Connect = client.connect,
) -> PollReport:
    """Take every complete file from `partner`'s SFTP pickup folder. Never raises for
    network, server or file problems: they are in the report (``fatal`` for the connection)."""
    state = STATE if state is None else state
    report = PollReport(partner=partner.id)
    if partner.sftp is None:
        report.errors.append(f"partner {partner.id} has no [sftp] configuration")
        report.fatal = True
        return report
    started = time.monotonic()
    state.last_poll[partner.id] = started
    with log.bound(partner=partner.id):
        _log.info("sftp.poll", host=partner.sftp.host, port=partner.sftp.port, folder=partner.sftp.pickup_dir)
        try:
            with _exclusive(intake.staging_dir, partner.id) as mine:
                if not mine:
                    report.skipped.append(("*", "another poll of this partner is running"))
                    _log.info("sftp.poll_busy", detail="another poll of this partner is running")
                    return report
                with connect(partner.sftp, timeout=timeout) as conn:
                    _Poll(intake, partner, conn, report, state, settle_seconds).run()
        except SftpError as e:
            report.fatal = True
            report.errors.append(f"{type(e).__name__}: {e}")
            _log.error("sftp.poll_failed", kind=type(e).__name__, error=str(e))
        except Exception as e:  # the poller outlives anything else too
            report.fatal = True
            report.errors.append(f"{type(e).__name__}: {e}")
            _log.exception("sftp.poll_failed", kind=type(e).__name__)
        report.seconds = time.monotonic() - started
        _log.info(
            "sftp.poll_done",
            flows=[f.id for f in report.flows],
            skipped=len(report.skipped),
            errors=len(report.errors),
            fatal=report.fatal,
            bytes=report.bytes,
            seconds=round(report.seconds, 3),
        )
    return report


def poll_all(
    intake: Intake,
    partners: Mapping[str, Partner] | Iterable[Partner],
    *,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
    state: PickupState | None = None,
    only_due: bool = False,
    timeout: float = 15.0,
    connect: Connect = client.connect,
) -> dict[str, PollReport]:
    """Poll every partner with an [sftp] configuration, one after the other; a partner
    that fails does not stop the others. `only_due`: skip partners polled less than
    their ``poll_seconds`` ago (for a watch loop that ticks faster)."""
    state = STATE if state is None else state
    items = partners.values() if isinstance(partners, Mapping) else partners
    reports: dict[str, PollReport] = {}
    for partner in items:
        if partner.sftp is None or (only_due and not state.due(partner)):
            continue
        reports[partner.id] = poll(
            intake, partner, settle_seconds=settle_seconds, state=state, timeout=timeout, connect=connect
        )
    return reports
