"""AS2 receiving benchmark: signed + encrypted messages through the real endpoint, with peak RSS.

    python bench/as2.py [--small 200] [--medium 20] [--large 3] [--large-mb 50]

Starts `relais as2 serve`'s app (uvicorn, the guarded h11 protocol) in a separate process on
127.0.0.1, as Relais would run. This process plays the partner's AS2 station: it wraps each
payload (sign SHA-256 + encrypt AES-256-CBC, like most stations), POSTs it, requests a signed
synchronous MDN and checks its signature and MIC. The endpoint, per message: reads the body,
archives it (fsync), decrypts, verifies, archives the payload, records the flow, builds and signs
the MDN, archives it. Sizes: 1 KB, 1 MB, and `--large-mb` MB (default 50).

Printed per size: messages/s and MB/s (payload bytes, wrapping on the client side included in the
time), then the peak RSS of the endpoint's process. Last line, JSON: {"1kb": {...}, "1mb": {...},
"50mb": {...}, "server_peak_rss_mb"}.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _serve(home: str, port_queue: multiprocessing.Queue, stop) -> None:
    from connectors.as2 import receiver
    from connectors.as2.server import ServerThread
    from relais import log
    from relais.compose import Runtime
    from relais.settings import Settings

    log.configure("WARNING")
    rt = Runtime.open(Settings.from_env(home))
    app = receiver.make_app(rt.intake, rt.partners, rt.outbound)
    server = ServerThread(app, port=0).start()
    port_queue.put(server.port)
    stop.wait()
    server.stop()
    rt.close()


class _RssSampler:
    """Peak RSS of one process (the endpoint), sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss / 1e6)
            except Exception:  # the process ended
                return
            self._stop.wait(0.02)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _payload(size: int) -> bytes:
    unit = b"<Line><ID>%08d</ID><Amount>123.45</Amount><Note>AS2 benchmark payload</Note></Line>\n"
    head, tail = b"<?xml version='1.0'?>\n<Batch>\n", b"</Batch>\n"
    lines, n = [], 0
    total = len(head) + len(tail)
    while total < size:
        line = unit % n
        lines.append(line)
        total += len(line)
        n += 1
    return (head + b"".join(lines) + tail)[:size] if size >= len(head) + len(tail) else b"x" * size


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", type=int, default=200, help="1 KB messages")
    ap.add_argument("--medium", type=int, default=20, help="1 MB messages")
    ap.add_argument("--large", type=int, default=3, help="large messages")
    ap.add_argument("--large-mb", type=int, default=50)
    args = ap.parse_args(argv)

    import httpx

    from connectors.as2 import certs, mdn, message
    from relais import log
    from tests.support.as2_keys import make_test_keypair

    log.configure("WARNING")
    tmp = tempfile.TemporaryDirectory(prefix="relais-bench-as2-")
    work = Path(tmp.name)
    home = work / "relais"
    (home / "partners").mkdir(parents=True)
    relais_kp, partner_kp = make_test_keypair("relais-bench"), make_test_keypair("partner-bench")
    certs.write_pem(relais_kp, home / "partners" / "relais.pem", home / "partners" / "relais.key")
    certs.write_pem(partner_kp, home / "partners" / "partner.pem", home / "partners" / "partner.key")
    max_bytes = max(args.large_mb * 2 * 1024 * 1024, 10_000_000)
    (home / "partners" / "partner.toml").write_text(
        '[as2]\nas2_id = "PARTNER"\nour_as2_id = "RELAIS"\npartner_cert = "partner.pem"\n'
        f'our_cert = "relais.pem"\nour_key = "relais.key"\nmax_bytes = {max_bytes}\n'
    )

    ctx = multiprocessing.get_context("spawn")
    port_queue, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=_serve, args=(str(home), port_queue, stop), daemon=True)
    proc.start()
    port = port_queue.get(timeout=60)
    url = f"http://127.0.0.1:{port}/as2"
    results: dict[str, dict[str, float]] = {}
    try:
        with httpx.Client(timeout=httpx.Timeout(600.0)) as client, _RssSampler(proc.pid or 0) as sampler:
            for label, size, count in (
                ("1kb", 1024, args.small),
                ("1mb", 1024 * 1024, args.medium),
                (f"{args.large_mb}mb", args.large_mb * 1024 * 1024, args.large),
            ):
                if count <= 0:
                    continue
                payload = _payload(size)
                start = time.perf_counter()
                for i in range(count):
                    wrapped = message.wrap(
                        payload,
                        f"bench-{label}-{i}.xml",
                        content_type="application/xml",
                        sign=partner_kp,
                        encrypt_for=relais_kp.cert,
                    )
                    headers = {
                        "AS2-Version": "1.2",
                        "AS2-From": "PARTNER",
                        "AS2-To": "RELAIS",
                        "Message-ID": f"<bench-{label}-{i}-{time.time_ns()}@bench>",
                        "Disposition-Notification-To": "bench@example",
                        "Disposition-Notification-Options": "signed-receipt-protocol=optional, pkcs7-signature; "
                        "signed-receipt-micalg=optional, sha-256",
                        **dict(wrapped.headers),
                    }
                    r = client.post(url, content=wrapped.body, headers=headers)
                    r.raise_for_status()
                    got = mdn.parse(r.headers["content-type"], r.content, partner_certs=[relais_kp.cert])
                    if not got.processed or got.mic != wrapped.mic:
                        raise SystemExit(f"bad MDN for {label} #{i}: {got.disposition} {got.mic} != {wrapped.mic}")
                    del wrapped, r
                seconds = time.perf_counter() - start
                results[label] = {
                    "messages": count,
                    "seconds": round(seconds, 3),
                    "messages_per_s": round(count / seconds, 2),
                    "mb_per_s": round(count * size / 1e6 / seconds, 2),
                }
                print(
                    f"{label:>6}: {count} messages in {seconds:.2f} s: {count / seconds:.1f} messages/s, "
                    f"{count * size / 1e6 / seconds:.1f} MB/s"
                )
    finally:
        stop.set()
        proc.join(timeout=30)
        if proc.is_alive():
            proc.terminate()
        tmp.cleanup()
    print(f"endpoint peak RSS: {sampler.peak:.0f} MB")
    print(json.dumps({**results, "server_peak_rss_mb": round(sampler.peak, 1), "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
