"""Fuzz `flows.io.safearchive` (the one archive reader) with hypothesis.

For any bytes, random or a mutation of a valid zip or tar.gz of invoices, `check` returns a number of
files or refuses with `Rejected` (`UnsafeInput` is one), as zip and as tar.gz; `iter_entries` and each
entry's `read` do the same; `sniff` names a container for any first bytes. Never another exception,
within the per-input deadline (tests/support/fuzzing.py); Python's peak memory stays bounded by the
reader's chunk, not by what the archive claims, on large and bomb-like inputs.
"""

from __future__ import annotations

import io
import tarfile
import zipfile

from hypothesis import example, given

from flows.domain.errors import Rejected
from flows.domain.model import Container
from flows.io import safearchive
from relais import generate as gen
from tests.support.fuzzing import fuzzed, hostile_bytes, no_hang, peak_memory

RECIPIENTS = gen.sample_directory()
INVOICES = [gen.invoice_xml("ubl", p) for p in gen.plan(3, 1, RECIPIENTS, seed=3)]


def _zip(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return out.getvalue()


def _tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return out.getvalue()


FILES = {f"lot/facture_{n}.xml": data for n, data in enumerate(INVOICES, 1)}
SEEDS = (
    _zip(FILES),
    _zip(FILES, zipfile.ZIP_STORED),
    _zip({"a.xml": INVOICES[0], "b/": b"", "__MACOSX/._a.xml": b"x"}, zipfile.ZIP_BZIP2),
    _zip({"a.xml": INVOICES[0]}, zipfile.ZIP_LZMA),
    _tar_gz(FILES),
)


def _read_all(data: bytes, container: Container) -> None:
    try:
        count = safearchive.check(io.BytesIO(data), container)
    except Rejected:
        pass
    else:
        assert count >= 0
    try:
        for entry in safearchive.iter_entries(io.BytesIO(data), container):
            assert len(entry.read()) <= entry.size
    except Rejected:
        pass


@given(data=hostile_bytes(*SEEDS))
@fuzzed(250)
@example(data=b"PK\x05\x06" + b"\x00" * 18)  # an empty zip
@example(data=b"\x1f\x8b")
def test_any_bytes_are_read_or_refused(data: bytes) -> None:
    with no_hang():
        assert isinstance(safearchive.sniff(data[:1024]), Container)
        for container in (Container.ZIP, Container.TAR_GZ):
            _read_all(data, container)


def test_large_and_bomb_like_inputs_stay_in_bounds() -> None:
    """Bombs (8 MB of zeros, deflated 1000:1, as zip and tar.gz) and a zip of 500 files: Python's peak
    stays a few of the reader's 1 MiB chunks, whatever the archive declares."""
    zeros = b"\x00" * 8_000_000
    inputs = [
        (_zip({"bomb.xml": zeros}), Container.ZIP),  # ratio ~1000: refused
        (_tar_gz({"bomb.xml": zeros}), Container.TAR_GZ),
        (_zip({f"f{n}.xml": INVOICES[n % 3] for n in range(500)}, zipfile.ZIP_STORED), Container.ZIP),
    ]
    for data, container in inputs:
        with no_hang():
            peak = peak_memory(lambda d=data, c=container: safearchive.check(io.BytesIO(d), c))
        assert peak < 8_000_000, (container, len(data), peak)  # measured: 0.06 to 3.2 MB
