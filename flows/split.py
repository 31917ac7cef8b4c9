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
