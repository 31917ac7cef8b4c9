"""Write-once, content-addressed storage of every received and emitted byte.

`Archive` is the interface (archive/base.py); `LocalArchive` (archive/local.py)
the folder backend. Callers hold SHA-256 digests and binary file objects, never paths.
"""

from archive.base import Archive, ArchivedObject
from archive.local import LocalArchive

__all__ = ["Archive", "ArchivedObject", "LocalArchive"]
