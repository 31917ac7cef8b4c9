"""Many invoices written as loose files or one zip / tar.gz archive."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from relais.generate.constants import _TAR_MTIME, _ZIP_TIME, Batch, Fmt
from relais.generate.directory import Recipient, sample_directory
from relais.generate.documents import document
from relais.generate.specs import Framing, InvoiceSpec, plan


def _temp_path(final: Path) -> Path:
    """Hidden sibling name a watcher must ignore (leading dot, ".part" suffix)."""
    return final.with_name(f".{final.name}.part")


def _publish(tmp: Path, final: Path) -> None:
    os.replace(tmp, final)


def write_batch(
    out_dir: Path,
    fmt: Fmt,
    n: int,
    lines: int,
    *,
    batch: Batch = "zip",
    recipients: list[Recipient] | None = None,
    invalid_ratio: float = 0.0,
    misrouted_ratio: float = 0.0,
    seed: int = 1,
    name: str | None = None,
    start: int = 1,
    credit_note_ratio: float = 0.0,
    framing: Framing | None = None,
) -> list[Path]:
    """Write `n` invoices into `out_dir`; return the paths written.

    `batch="none"`: one file per invoice. `"zip"` / `"tar.gz"`: one archive
    named `name` (default "{fmt}-{n}x{lines}-s{seed}") plus the extension,
    written entry by entry so only one invoice is in memory at a time.
    Every file is written under a hidden ".<name>.part" name then renamed, so
    a folder watcher never sees a partial file. Archives are byte-reproducible
    (fixed entry times, gzip mtime 0) for UBL and CII. `framing` writes its billing framework,
    previous piece and actors (BT-23, BT-25, BG-24) into every invoice.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if recipients is None:
        recipients = sample_directory(seed=seed)
    planned = plan(
        n,
        lines,
        recipients,
        invalid_ratio,
        misrouted_ratio,
        seed=seed,
        start=start,
        credit_note_ratio=credit_note_ratio,
    )
    return write_specs(
        out_dir, fmt, (spec.framed(framing) for spec in planned), batch, name or f"{fmt}-{n}x{lines}-s{seed}"
    )


def write_specs(out_dir: Path, fmt: Fmt, specs: Iterable[InvoiceSpec], batch: Batch, base: str) -> list[Path]:
    """Write the documents of `specs` into `out_dir` as loose files or one archive named `base` + extension."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if batch == "none":
        written = []
        for spec in specs:
            file_name, data = document(fmt, spec)
            final = out_dir / file_name
            tmp = _temp_path(final)
            tmp.write_bytes(data)
            _publish(tmp, final)
            written.append(final)
        return written
    if batch == "zip":
        final = out_dir / f"{base}.zip"
        tmp = _temp_path(final)
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for spec in specs:
                file_name, data = document(fmt, spec)
                entry = zipfile.ZipInfo(file_name, date_time=_ZIP_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                zf.writestr(entry, data)
    elif batch == "tar.gz":
        final = out_dir / f"{base}.tar.gz"
        tmp = _temp_path(final)
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            for spec in specs:
                file_name, data = document(fmt, spec)
                member = tarfile.TarInfo(file_name)
                member.size = len(data)
                member.mtime = _TAR_MTIME
                member.mode = 0o644
                tar.addfile(member, io.BytesIO(data))
    else:
        raise ValueError(f"unknown batch kind: {batch!r}")
    _publish(tmp, final)
    return [final]
