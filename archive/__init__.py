"""Write-once, content-addressed storage of every received and emitted byte."""

from archive.local import ArchivedObject, LocalArchive

__all__ = ["ArchivedObject", "LocalArchive"]
