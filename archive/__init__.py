"""Write-once, content-addressed storage of every received and emitted byte.

`Archive` is the interface (archive/base.py); `LocalArchive` (archive/local.py)
the folder backend; `S3Archive` (archive/s3.py) the S3 bucket with Object Lock,
imported on first use only (boto3 is loaded only by a process that uses it).
Callers hold SHA-256 digests and binary file objects, never paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archive.base import Archive, ArchivedObject, CorruptObject
from archive.local import LocalArchive

if TYPE_CHECKING:
    from archive.s3 import S3Archive

__all__ = ["Archive", "ArchivedObject", "CorruptObject", "LocalArchive", "S3Archive"]


def __getattr__(name: str) -> Any:
    if name == "S3Archive":
        from archive.s3 import S3Archive

        return S3Archive
    raise AttributeError(f"module 'archive' has no attribute {name!r}")
