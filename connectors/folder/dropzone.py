"""Folder drop zones: one inbox per partner (``dropzones/<partner>/in``).

A file is taken only once complete: temporary names (``*.part``, ``*.tmp``,
dot-files) are ignored, and its size and modification time must not have
changed for ``stable_seconds``. Its bytes are archived (fsync'd) and the flow
recorded before the file leaves the inbox; if the file changed while it was
being copied, it is left for the next scan.

Taken once, even across a crash: the flow is recorded before the file is
removed, so a crash between the two leaves a file that already has a flow. The
rule is `flows.pipeline.intake`'s, the same for every channel: a file whose partner,
name, size and SHA-256 already have a flow recorded after the file was written
is not recorded again: it is removed (the archive has its bytes) and
``dropzone.already_recorded`` is logged. A partner sending the very same file again under the same name is
therefore not answered a second time; under another name it is a new flow
(answered RLS-T11, duplicate).

Channel: files written by the hosted SFTP server (``relais sftp serve``) carry
an extended attribute, ``user.relais.channel = sftp`` (`mark_sftp`), and are
recorded with channel ``sftp``; every other file is ``folder``. The server sets
it on the file's inode while the file still has a name this scan ignores (the
hidden temporary file of an atomic upload, or the partner's own ``*.part``
name), and the final name appears by a rename, which keeps it. So there is no
moment where a file can be taken but is not yet marked, and no separate record
that a crash could leave out of step: the mark lives and dies with the file. A
file replaced in the inbox by another writer is a new inode, without the mark.
The drop zones' file system must support user extended attributes (ext4, XFS,
Btrfs, tmpfs since Linux 6.6, NFS 4.2); the server checks this at start and
logs ``sftp.channel_mark_unsupported`` when it cannot mark (its uploads are then
recorded as ``folder``). Tools that copy files without their extended
attributes drop the mark too.

Names that are not plain text: a file whose name holds bytes that are not UTF-8
(a Latin-1 client), a control character, or a backslash (a Windows path sent as
a name, e.g. ``..\\..\\evil.xml``) is taken like any other, under a safe
*recorded name* (`recorded_name`): each such byte or character, and ``%``, is
written ``%XX`` (``facture\xe9.xml`` is recorded as ``facture%E9.xml``). The
recorded name is what the store, the logs and the return flow show; the file is
read and removed under its real name, and ``dropzone.unsafe_name`` (a warning)
records both, the original bytes in hexadecimal. A name with a backslash is
never taken for a writer's temporary name, even when it starts with a dot.
Being taken and removed like any file, it is not taken again after a restart.
So one badly named file never stops the intake of the others; nor does a file
that cannot be read (``dropzone.unreadable_file``: it stays for the next scan).

Files the scan never takes (temporary or hidden names) are reported once they
have been left untouched for `IGNORED_REPORT_AFTER` seconds: a
``dropzone.ignored_file`` warning, at most once per file. The file is remembered
as reported by another extended attribute, ``user.relais.reported``, on the file
itself (or, where it cannot be set, for the life of the process).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

from archive import ArchivedObject
from flows.domain import log
from flows.domain.model import Channel, Flow
from flows.pipeline.intake import Arrival, Ingested, Intake

_log = log.get("relais.dropzone")
TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".filepart", ".crdownload")
CHANNEL_XATTR = "user.relais.channel"  # b"sftp": written by the hosted SFTP server (module doc)
REPORTED_XATTR = "user.relais.reported"  # an ignored file already reported (module doc)
IGNORED_REPORT_AFTER = 3600.0  # seconds untouched before a never-taken file is reported
_reported_here: set[tuple[int, int, int]] = set()  # (st_dev, st_ino, st_mtime_ns) where no xattr could be set


# Undecodable bytes (surrogate escapes, as os.scandir gives them), control characters, backslashes.
_UNSAFE = re.compile("[\x00-\x1f\x7f\\\\\udc80-\udcff]")
_UNSAFE_OR_PERCENT = re.compile("[\x00-\x1f\x7f\\\\\udc80-\udcff%]")


def recorded_name(name: str) -> str:
    """The name a file is recorded under: its own, or with unsafe bytes escaped (module doc).

    >>> recorded_name("facture-1.xml"), recorded_name(os.fsdecode(b"facture\\xe9 100%.xml"))
    ('facture-1.xml', 'facture%E9 100%25.xml')
    >>> recorded_name("..\\\\..\\\\evil.xml"), recorded_name("a\\nb.xml")
    ('..%5C..%5Cevil.xml', 'a%0Ab.xml')
    """
    if not _UNSAFE.search(name):
        return name

    def escape(m: re.Match[str]) -> str:
        code = ord(m.group())
        return f"%{code - 0xDC00 if code >= 0xDC80 else code:02X}"

    return _UNSAFE_OR_PERCENT.sub(escape, name)


def _name_bytes(name: str) -> str:
    return os.fsencode(name).hex()


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    partner: str
    path: Path
    size: int
    mtime_ns: int


def is_temporary(name: str) -> bool:
    """Names that writers use while a file is still being written.

    >>> [is_temporary(n) for n in ("a.xml", "a.xml.part", ".a.xml", "b.TMP", "..\\\\evil.xml")]
    [False, True, True, True, False]
    """
    if name.lower().endswith(TEMP_SUFFIXES):
        return True
    return name.startswith(".") and "\\" not in name  # a backslash: a Windows path, not a hidden file


def mark_sftp(target: int | str | os.PathLike[str]) -> None:
    """Mark a file (an open descriptor, or a path: symlinks not followed) as written by the hosted
    SFTP server. Raises OSError when the file system cannot hold the mark (see the module doc)."""
    if not hasattr(os, "setxattr"):
        raise OSError(f"extended attributes are not available on {os.name}")
    if isinstance(target, int):
        os.setxattr(target, CHANNEL_XATTR, Channel.SFTP.value.encode())
    else:
        os.setxattr(target, CHANNEL_XATTR, Channel.SFTP.value.encode(), follow_symlinks=False)


def channel_of(path: Path) -> Channel:
    """``sftp`` for a file marked by the hosted SFTP server, else ``folder``."""
    try:
        value = os.getxattr(path, CHANNEL_XATTR, follow_symlinks=False)
    except (OSError, AttributeError):  # no mark, no xattr support, or gone
        return Channel.FOLDER
    return Channel.SFTP if value == Channel.SFTP.value.encode() else Channel.FOLDER


def partners(dropzones: Path) -> list[str]:
    if not dropzones.is_dir():
        return []
    return sorted(p.name for p in dropzones.iterdir() if (p / "in").is_dir())


def candidates(dropzones: Path, stable_seconds: float, now: float | None = None) -> Iterator[Candidate]:
    """Complete files waiting in the partners' inboxes, oldest first.

    Files under names never taken, left untouched for `IGNORED_REPORT_AFTER`, are reported on the way.
    """
    now = time.time() if now is None else now
    found = []
    for partner in partners(dropzones):
        with os.scandir(dropzones / partner / "in") as it:
            for entry in it:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if is_temporary(entry.name):
                    _report_ignored(partner, entry, now)
                    continue
                st = entry.stat(follow_symlinks=False)
                if now - st.st_mtime < stable_seconds:
                    continue  # still being written, or too fresh to tell
                found.append(Candidate(partner, Path(entry.path), st.st_size, st.st_mtime_ns))
    found.sort(key=lambda c: c.mtime_ns)
    yield from found


def _report_ignored(partner: str, entry: os.DirEntry[str], now: float) -> None:
    """Log a file left under a name the scan never takes, once per file (module doc)."""
    try:
        st = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return
    if now - st.st_mtime < IGNORED_REPORT_AFTER:
        return  # most likely still being written, or about to be renamed
    key = (st.st_dev, st.st_ino, st.st_mtime_ns)  # with the time: inode numbers are reused
    if key in _reported_here:
        return
    try:
        if os.getxattr(entry.path, REPORTED_XATTR, follow_symlinks=False):
            return
    except (OSError, AttributeError):
        pass  # not reported yet, or no xattr support (then `_reported_here` remembers it)
    _log.warning(
        "dropzone.ignored_file",
        partner=partner,
        path=str(Path(entry.path).parent / recorded_name(entry.name)),
        name=recorded_name(entry.name),
        size=st.st_size,
        idle_seconds=int(now - st.st_mtime),
        detail="temporary or hidden name: never taken; rename it to send it, or delete it",
    )
    try:
        os.setxattr(entry.path, REPORTED_XATTR, b"1", follow_symlinks=False)
    except (OSError, AttributeError):
        _reported_here.add(key)


def take(intake: Intake, c: Candidate) -> Flow | None:
    """Archive and record one inbox file (`flows.pipeline.intake`), then remove it. None when it changed under
    our feet, or when it already has a flow (left behind by a crash between recording and removal:
    removed now). A file written again after its flow was recorded is a resend and gets a flow of its own.

    Several scanners may share one drop zone (workers on several machines): each holds an exclusive
    ``flock`` on the file while it takes it, and a file locked by another scanner is left to it (None).
    One that gets the lock after the other removed the file finds its flow by the idempotence rule."""
    try:
        fd = os.open(c.path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None  # taken by another scanner meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None  # another scanner is taking it
        if os.fstat(fd).st_nlink == 0:
            return None  # it took it and removed it while we waited for the open
        return _take_locked(intake, c)
    finally:
        os.close(fd)


def _take_locked(intake: Intake, c: Candidate) -> Flow | None:
    obj = intake.archive.put_file(c.path)
    arrival = _arrival(c, obj)
    if arrival is None:
        return None
    return _settle(c, obj, intake.ingest_archived(arrival, obj))


def _arrival(c: Candidate, obj: ArchivedObject) -> Arrival | None:
    """The arrival of a file just archived as `obj`; None when it changed while it was copied."""
    st = c.path.stat()
    if st.st_size != c.size or st.st_mtime_ns != c.mtime_ns or obj.size != c.size:
        # The writer was not done: nothing is recorded and the file waits for the next scan
        # (the partial copy stays in the write-once archive, unreferenced).
        _log.warning(
            "dropzone.changed_during_copy", partner=c.partner, path=str(c.path.parent / recorded_name(c.path.name))
        )
        return None
    written_at = dt.datetime.fromtimestamp(c.mtime_ns / 1e9, dt.UTC)
    name = recorded_name(c.path.name)
    if name != c.path.name:
        _log.warning(
            "dropzone.unsafe_name",
            partner=c.partner,
            recorded_name=name,
            name_bytes=_name_bytes(c.path.name),
            sha256=obj.sha256,
            detail="the file name holds bytes that are not UTF-8, control characters or backslashes:"
            " taken under the recorded name, each of these written %XX",
        )
    return Arrival(c.partner, channel_of(c.path), name, written_at)


def _settle(c: Candidate, obj: ArchivedObject, got: Ingested) -> Flow | None:
    """Remove a recorded file from its inbox; its new flow, or None when it already had one."""
    c.path.unlink(missing_ok=not got.created)
    if not got.created:
        _log.warning(
            "dropzone.already_recorded",
            partner=c.partner,
            path=str(c.path.parent / recorded_name(c.path.name)),
            flow_id=got.flow.id,
            size=obj.size,
            sha256=obj.sha256,
            detail="this file already has a flow (left after an interrupted intake): removed",
        )
        return None
    return got.flow


def _take_batch(intake: Intake, batch: list[Candidate]) -> list[Flow] | None:
    """Take several inbox files together: each locked as `take` does, all archived with grouped syncs
    (`Archive.put_many`), all recorded in one transaction (`Intake.ingest_many`), then removed. Archive
    first: no flow row before every byte is durable. None when a file could not be read: the caller
    takes them one by one (each file's problem reported on its own)."""
    with contextlib.ExitStack() as stack:
        locked: list[Candidate] = []
        for c in batch:
            try:
                fd = os.open(c.path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                continue  # taken by another scanner meanwhile
            stack.callback(os.close, fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # another scanner is taking it
            if os.fstat(fd).st_nlink == 0:
                continue
            locked.append(c)
        try:
            objs = intake.archive.put_many([c.path for c in locked])
            arrivals = [(c, obj, _arrival(c, obj)) for c, obj in zip(locked, objs, strict=True)]
        except OSError:
            return None
        ready = [(c, obj, a) for c, obj, a in arrivals if a is not None]
        got = intake.ingest_many([(a, obj) for _, obj, a in ready])
        flows = [_settle(c, obj, g) for (c, obj, _), g in zip(ready, got, strict=True)]
    return [f for f in flows if f is not None]


#: Files taken together by `scan` (archived with grouped syncs, recorded in one transaction)...
SCAN_BATCH = 64
#: ... up to about this many bytes: big files gain nothing from grouped syncs, and a scanner holding a
#: batch holds its files, so another process scanning the same drop zones (a second `relais run`, an
#: Airflow task) takes the next batches instead of waiting on these.
SCAN_BATCH_BYTES = 1024 * 1024


def scan(intake: Intake, dropzones: Path, stable_seconds: float, *, held: frozenset[str] = frozenset()) -> list[Flow]:
    """Take every complete file of every inbox but those of the partners in `held` (their files wait);
    returns the flows recorded. Files are taken `SCAN_BATCH` at a time, or fewer once they reach
    `SCAN_BATCH_BYTES` (`_take_batch`)."""
    flows: list[Flow] = []
    batch: list[Candidate] = []
    size = 0
    for c in candidates(dropzones, stable_seconds):
        if c.partner in held:
            continue
        batch.append(c)
        size += c.size
        if len(batch) >= SCAN_BATCH or size >= SCAN_BATCH_BYTES:
            flows.extend(_take_all(intake, batch))
            batch, size = [], 0
    flows.extend(_take_all(intake, batch))
    return flows


def _take_all(intake: Intake, batch: list[Candidate]) -> list[Flow]:
    if len(batch) > 1:
        taken = _take_batch(intake, batch)
        if taken is not None:
            return taken
    flows = []
    for c in batch:
        try:
            flow = take(intake, c)
        except FileNotFoundError:
            continue  # gone between listing and reading: nothing to take
        except OSError as e:  # this file's problem (unreadable...): it waits, the others go on
            _log.warning(
                "dropzone.unreadable_file",
                partner=c.partner,
                path=str(c.path.parent / recorded_name(c.path.name)),
                error=f"{type(e).__name__}: {e.strerror or e}",
                detail="the file could not be taken; it stays in the inbox for the next scan",
            )
            continue
        if flow is not None:
            flows.append(flow)
    return flows
