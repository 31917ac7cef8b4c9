"""Write-once, content-addressed archive."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from archive import LocalArchive


def test_put_is_content_addressed_and_write_once(tmp_path):
    a = LocalArchive(tmp_path / "arch")
    data = b"<Invoice/>" * 1000
    obj = a.put_bytes(data)
    assert obj.sha256 == hashlib.sha256(data).hexdigest() and obj.size == len(data)
    assert a.read(obj.sha256) == data
    path = a.path(obj.sha256)
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # read-only mode bits
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    again = a.put_stream(io.BytesIO(data))
    assert again == obj
    assert list((tmp_path / "arch" / "tmp").iterdir()) == []  # no temporary left behind


def test_large_stream_in_constant_memory(tmp_path):
    import tracemalloc

    a = LocalArchive(tmp_path / "arch")

    class Zeros(io.RawIOBase):
        def __init__(self, n):
            self.left = n

        def readable(self):
            return True

        def read(self, size=-1):
            size = min(self.left, 1 << 20 if size < 0 else size)
            self.left -= size
            return b"\0" * size

    tracemalloc.start()
    obj = a.put_stream(Zeros(64 << 20))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert obj.size == 64 << 20
    assert peak < 8 << 20


def test_rejects_non_digest_paths(tmp_path):
    a = LocalArchive(tmp_path)
    with pytest.raises(ValueError):
        a.path("../../etc/passwd")
