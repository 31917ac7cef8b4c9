"""Folder drop zones: one inbox per partner (``dropzones/<partner>/in``).

A file is taken only once complete: temporary names (``*.part``, ``*.tmp``,
dot-files) are ignored, and its size and modification time must not have
changed for ``stable_seconds``. Its bytes are archived (fsync'd) and the flow
recorded before the file leaves the inbox; if the file changed while it was
being copied, it is left for the next scan.

Taken once, even across a crash: the flow is recorded before the file is
removed, so a crash between the two leaves a file that already has a flow. The
rule is `flows.intake`'s, the same for every channel: a file whose partner,
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

Files the scan never takes (temporary or hidden names) are reported once they
have been left untouched for `IGNORED_REPORT_AFTER` seconds: a
``dropzone.ignored_file`` warning, at most once per file. The file is remembered
as reported by another extended attribute, ``user.relais.reported``, on the file
itself (or, where it cannot be set, for the life of the process).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

from flows import log
from flows.intake import Arrival, Intake
from flows.model import Channel, Flow

_log = log.get("relais.dropzone")
TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".filepart", ".crdownload")
CHANNEL_XATTR = "user.relais.channel"  # b"sftp": written by the hosted SFTP server (module doc)
REPORTED_XATTR = "user.relais.reported"  # an ignored file already reported (module doc)
IGNORED_REPORT_AFTER = 3600.0  # seconds untouched before a never-taken file is reported
_reported_here: set[tuple[int, int, int]] = set()  # (st_dev, st_ino, st_mtime_ns) where no xattr could be set


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    partner: str
    path: Path
    size: int
    mtime_ns: int


def is_temporary(name: str) -> bool:
    """Names that writers use while a file is still being written.

    >>> [is_temporary(n) for n in ("a.xml", "a.xml.part", ".a.xml", "b.TMP")]
    [False, True, True, True]
    """
    return name.startswith(".") or name.lower().endswith(TEMP_SUFFIXES)


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
        path=entry.path,
        name=entry.name,
        size=st.st_size,
        idle_seconds=int(now - st.st_mtime),
        detail="temporary or hidden name: never taken; rename it to send it, or delete it",
    )
    try:
        os.setxattr(entry.path, REPORTED_XATTR, b"1", follow_symlinks=False)
    except (OSError, AttributeError):
        _reported_here.add(key)


def take(intake: Intake, c: Candidate) -> Flow | None:
    """Archive and record one inbox file (`flows.intake`), then remove it. None when it changed under
    our feet, or when it already has a flow (left behind by a crash between recording and removal:
    removed now). A file written again after its flow was recorded is a resend and gets a flow of its own."""
    obj = intake.archive.put_file(c.path)
    st = c.path.stat()
    if st.st_size != c.size or st.st_mtime_ns != c.mtime_ns or obj.size != c.size:
        # The writer was not done: nothing is recorded and the file waits for the next scan
        # (the partial copy stays in the write-once archive, unreferenced).
        _log.warning("dropzone.changed_during_copy", partner=c.partner, path=str(c.path))
        return None
    written_at = dt.datetime.fromtimestamp(c.mtime_ns / 1e9, dt.UTC)
    got = intake.ingest_archived(Arrival(c.partner, channel_of(c.path), c.path.name, written_at), obj)
    c.path.unlink()
    if not got.created:
        _log.warning(
            "dropzone.already_recorded",
            partner=c.partner,
            path=str(c.path),
            flow_id=got.flow.id,
            size=obj.size,
            sha256=obj.sha256,
            detail="this file already has a flow (left after an interrupted intake): removed",
        )
        return None
    return got.flow


def scan(intake: Intake, dropzones: Path, stable_seconds: float, *, held: frozenset[str] = frozenset()) -> list[Flow]:
    """Take every complete file of every inbox but those of the partners in `held` (their files wait);
    returns the flows recorded."""
    flows = []
    for c in candidates(dropzones, stable_seconds):
        if c.partner in held:
            continue
        try:
            flow = take(intake, c)
        except FileNotFoundError:
            continue  # gone between listing and reading: nothing to take
        if flow is not None:
            flows.append(flow)
    return flows
