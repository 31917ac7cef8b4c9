"""SFTP pickup benchmark: files/s and MB/s from a local SSH server, with peak RSS.

    python bench/sftp.py [--files 1000] [--big-mb 500]

Starts Relais's own SFTP server (asyncssh, a plain confined account on 127.0.0.1:
tests/support/sftp_plain.py) in a separate process as the partner's server, puts N small
invoices and then one big file in its pickup folder, and times
`connectors.sftp.pickup.poll` taking them: claim, streamed download with SHA-256,
archive (fsync), flow recorded, remote file
moved to processed/. Last line, JSON: {"small_files_per_s", "small_mb_per_s",
"big_mb_per_s", "peak_rss_mb"} (peak RSS of Relais's side, the server process excluded).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import PeakSampler


def _serve(root: str, public_key: str, host_key: str, port_queue: multiprocessing.Queue, stop) -> None:
    from connectors.sftp.hosted.server import Account, ServerThread
    from relais import log
    from tests.support.sftp_plain import plain

    log.configure("WARNING")

    account = Account(user="relais", root=Path(root), authorized_keys=(public_key,))
    with ServerThread({"relais": account}, Path(host_key), handlers=plain("relais")) as server:
        port_queue.put((server.port, server.host_key_line))
        stop.wait()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--big-mb", type=int, default=500)
    args = ap.parse_args(argv)

    import asyncssh

    from connectors.partners import Partner, SftpPickup
    from connectors.sftp import pickup
    from relais import generate as gen
    from relais import log
    from relais.compose import Runtime
    from relais.settings import Settings

    log.configure("WARNING")
    tmp = tempfile.TemporaryDirectory(prefix="relais-bench-sftp-")
    work = Path(tmp.name)
    remote = work / "partner-server"
    (remote / "outbound").mkdir(parents=True)
    key = asyncssh.generate_private_key("ssh-ed25519")
    key_path = work / "relais_key"
    key_path.write_bytes(key.export_private_key("openssh"))
    key_path.chmod(0o600)
    public = " ".join(key.export_public_key("openssh").decode().split()[:2])

    ctx = multiprocessing.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(str(remote), public, str(work / "host_key"), ports, stop))
    server.start()
    port, host_key_line = ports.get(timeout=60)
    partner = Partner(
        id="bench",
        name="bench",
        sftp=SftpPickup(
            host="127.0.0.1",
            port=port,
            user="relais",
            private_key=key_path,
            host_key=host_key_line,
            pickup_dir="outbound",
            return_dir="inbound",
        ),
    )
    rt = Runtime.open(Settings.from_env(work / "home", database_url=f"sqlite:///{work / 'home' / 'relais.db'}"))
    print(
        f"relais SFTP pickup benchmark: {args.files} small files, one {args.big_mb} MB file, "
        f"{os.cpu_count()} CPUs, server on 127.0.0.1:{port} (separate process)",
        flush=True,
    )

    recipients = gen.sample_directory()
    small_bytes = 0
    old = time.time() - 60
    for i, spec in enumerate(gen.plan(args.files, 3, recipients, seed=5), 1):
        _, data = gen.document("ubl", spec)
        path = remote / "outbound" / f"INV-{i:06d}.xml"
        path.write_bytes(data)
        os.utime(path, (old, old))
        small_bytes += len(data)
    with PeakSampler(exclude=frozenset({server.pid})) as peak_small:
        t0 = time.perf_counter()
        report = pickup.poll(rt.intake, partner, settle_seconds=0.01)
        small_s = time.perf_counter() - t0
    assert len(report.flows) == args.files, (len(report.flows), report.errors[:3], report.skipped[:3])
    small_rate, small_mbps = args.files / small_s, small_bytes / 1e6 / small_s
    print(
        f"{args.files} small files ({small_bytes / 1e6:.1f} MB)   {small_s:7.2f} s {small_rate:8.0f} files/s "
        f"{small_mbps:7.1f} MB/s {peak_small.peak:6.0f} MB peak RSS",
        flush=True,
    )

    big = remote / "outbound" / "big.zip"
    with big.open("wb") as f:  # sparse: fast to create, 500 MB on the wire all the same
        f.truncate(args.big_mb * 1024 * 1024)
    os.utime(big, (old, old))
    with PeakSampler(exclude=frozenset({server.pid})) as peak_big:
        t0 = time.perf_counter()
        report = pickup.poll(rt.intake, partner, settle_seconds=0.01)
        big_s = time.perf_counter() - t0
    assert len(report.flows) == 1 and report.flows[0].size == args.big_mb * 1024 * 1024, report.errors
    big_mbps = args.big_mb * 1.048576 / big_s
    print(
        f"one {args.big_mb} MB file               {big_s:7.2f} s {'':>14} {big_mbps:7.1f} MB/s "
        f"{peak_big.peak:6.0f} MB peak RSS",
        flush=True,
    )
    stop.set()
    server.join(timeout=10)
    rt.close()
    print(
        json.dumps(
            {
                "small_files_per_s": round(small_rate, 1),
                "small_mb_per_s": round(small_mbps, 2),
                "big_mb_per_s": round(big_mbps, 1),
                "peak_rss_mb": round(max(peak_small.peak, peak_big.peak), 1),
            }
        )
    )
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
