"""Split an archived flow into its documents, one at a time (never the whole batch).

A single XML or PDF file is one document; a zip or tar.gz batch yields one
document per file entry, in archive order, through the hardened archive reader.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

from flows import safearchive
from flows.model import Container

HEAD = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    position: int  # 1-based, in the order of the flow
    entry_name: str
    data: bytes  # the bytes as received: delivered as they are


def container_of(path: Path) -> Container:
    with Path(path).open("rb") as f:
        return safearchive.sniff(f.read(HEAD))


#: Compressed bytes per document assumed for a tar.gz, whose entries cannot be counted without inflating it.
TAR_GZ_BYTES_PER_DOCUMENT = 3000


def estimate_documents(path: Path) -> int:
    """About how many documents a flow holds, cheaply, before it is processed (to size work groups):
    a zip's entries from its central directory, a tar.gz from its size, 1 otherwise. Never fails: an
    unreadable file counts as 1 (processing will say what is wrong with it).
    """
    import zipfile

    try:
        container = container_of(path)
        if container is Container.ZIP:
            with zipfile.ZipFile(path) as zf:
                return max(1, sum(not i.is_dir() for i in zf.infolist()))
        if container is Container.TAR_GZ:
            return max(1, Path(path).stat().st_size // TAR_GZ_BYTES_PER_DOCUMENT)
    except (OSError, zipfile.BadZipFile, ValueError):
        pass
    return 1


def is_batch(container: Container) -> bool:
    return container in (Container.ZIP, Container.TAR_GZ)


def documents(
    path: Path,
    container: Container,
    original_name: str,
    limits: safearchive.ArchiveLimits = safearchive.ArchiveLimits(),
) -> Iterator[Document]:
    """Documents of the flow stored at `path`. Raises the archive reader's refusals."""
    if not is_batch(container):
        yield Document(1, original_name, Path(path).read_bytes())
        return
    for position, entry in enumerate(safearchive.iter_entries(path, container, limits), 1):
        yield Document(position, entry.name, entry.read())
