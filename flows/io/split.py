"""Split an archived flow into its documents, one at a time (never the whole batch).

A single XML or PDF file is one document; a zip or tar.gz batch yields one
document per file entry, in archive order, through the hardened archive reader.
The flow is read from a seekable binary file object (``rt.archive.open(sha256)``),
from its start; the caller opens and closes it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import BinaryIO

from archive import Archive
from flows.domain.model import Container
from flows.io import safearchive

HEAD = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    position: int  # 1-based, in the order of the flow
    entry_name: str
    data: bytes  # the bytes as received: delivered as they are


def container_of(f: BinaryIO) -> Container:
    """The container of the flow in `f`, from its first bytes.

    >>> import io; container_of(io.BytesIO(b"PK\\x03\\x04...")), container_of(io.BytesIO(b"<Invoice/>"))
    (<Container.ZIP: 'zip'>, <Container.XML: 'xml'>)
    """
    f.seek(0)
    return safearchive.sniff(f.read(HEAD))


#: Compressed bytes per document assumed for a tar.gz, whose entries cannot be counted without inflating it.
TAR_GZ_BYTES_PER_DOCUMENT = 3000


def estimate_documents(f: BinaryIO) -> int:
    """About how many documents a flow holds, cheaply, before it is processed (to size work groups):
    a zip's entries from its central directory, a tar.gz from its size, 1 otherwise. Never fails: an
    unreadable file counts as 1 (processing will say what is wrong with it).
    """
    import zipfile

    try:
        container = container_of(f)
        if container is Container.ZIP:
            with zipfile.ZipFile(f) as zf:
                return max(1, sum(not i.is_dir() for i in zf.infolist()))
        if container is Container.TAR_GZ:
            return max(1, f.seek(0, os.SEEK_END) // TAR_GZ_BYTES_PER_DOCUMENT)
    except (OSError, zipfile.BadZipFile, ValueError):
        pass
    return 1


def estimate_archived(archive: Archive, sha256: str) -> int:
    """`estimate_documents` of an archived flow; 1 when it cannot be opened (processing will say why)."""
    try:
        f = archive.open(sha256)
    except OSError:
        return 1
    with f:
        return estimate_documents(f)


def is_batch(container: Container) -> bool:
    return container in (Container.ZIP, Container.TAR_GZ)


def documents(
    f: BinaryIO,
    container: Container,
    original_name: str,
    limits: safearchive.ArchiveLimits = safearchive.ArchiveLimits(),
) -> Iterator[Document]:
    """Documents of the flow read from `f` (kept open until the iterator is done).
    Raises the archive reader's refusals."""
    if not is_batch(container):
        f.seek(0)
        yield Document(1, original_name, f.read())
        return
    for position, entry in enumerate(safearchive.iter_entries(f, container, limits), 1):
        yield Document(position, entry.name, entry.read())
