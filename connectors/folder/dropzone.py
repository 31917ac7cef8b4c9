"""Folder drop zones: one inbox per partner (``dropzones/<partner>/in``).

A file is taken only once complete: temporary names (``*.part``, ``*.tmp``,
dot-files) are ignored, and its size and modification time must not have
changed for ``stable_seconds``. Its bytes are archived (fsync'd) and the flow
recorded before the file leaves the inbox; if the file changed while it was
being copied, it is left for the next scan.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from pathlib import Path

from flows.model import Channel, Flow
from flows.pipeline import Runtime, record
from relais import log

_log = log.get("relais.dropzone")
TEMP_SUFFIXES = (".part", ".tmp", ".partial", ".filepart", ".crdownload")


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


def partners(dropzones: Path) -> list[str]:
    if not dropzones.is_dir():
        return []
    return sorted(p.name for p in dropzones.iterdir() if (p / "in").is_dir())


def candidates(dropzones: Path, stable_seconds: float, now: float | None = None) -> Iterator[Candidate]:
    """Complete files waiting in the partners' inboxes, oldest first."""
    now = time.time() if now is None else now
    found = []
    for partner in partners(dropzones):
        with os.scandir(dropzones / partner / "in") as it:
            for entry in it:
                if not entry.is_file(follow_symlinks=False) or is_temporary(entry.name):
                    continue
                st = entry.stat(follow_symlinks=False)
                if now - st.st_mtime < stable_seconds:
                    continue  # still being written, or too fresh to tell
                found.append(Candidate(partner, Path(entry.path), st.st_size, st.st_mtime_ns))
    found.sort(key=lambda c: c.mtime_ns)
    yield from found


def take(rt: Runtime, c: Candidate) -> Flow | None:
    """Archive, record, then remove one inbox file. None when it changed under our feet."""
    obj = rt.archive.put_file(c.path)
    st = c.path.stat()
    if st.st_size != c.size or st.st_mtime_ns != c.mtime_ns or obj.size != c.size:
        # The writer was not done: nothing is recorded and the file waits for the next scan
        # (the partial copy stays in the write-once archive, unreferenced).
        _log.warning("dropzone.changed_during_copy", partner=c.partner, path=str(c.path))
        return None
    flow = record(rt, c.partner, Channel.FOLDER, obj, c.path.name)
    c.path.unlink()
    return flow


def scan(rt: Runtime) -> list[Flow]:
    """Take every complete file of every inbox; returns the flows recorded."""
    flows = []
    for c in candidates(rt.settings.dropzones_dir, rt.settings.stable_seconds):
        try:
            flow = take(rt, c)
        except FileNotFoundError:
            continue  # gone between listing and reading: nothing to take
        if flow is not None:
            flows.append(flow)
    return flows
