"""Credentials of a partner's SFTP server taken from an Airflow connection.

A partner file may name ``airflow_conn_id`` instead of a key file and a pinned
host key. The connection (type ``sftp`` or ``ssh``, as the Airflow SFTP
provider defines them) gives host, port and login; its extras give
``private_key`` (the key text) or ``key_file`` (a path), and ``host_key`` (the
server's public key, "type base64"), under the same names the provider uses.
The partner file's own values win where both are set. The result is an
ordinary `SftpPickup`, so the same client code runs with or without Airflow.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

from connectors.partners import SftpPickup
from flows.domain.errors import ConfigError


def _connection(conn_id: str) -> Any:
    try:
        from airflow.sdk import BaseHook
    except ImportError as e:  # pragma: no cover - Airflow is an optional extra
        raise ConfigError(f"airflow_conn_id {conn_id!r} needs Airflow installed") from e
    return BaseHook.get_connection(conn_id)


def resolve(cfg: SftpPickup, key_dir: Path, lookup=_connection) -> SftpPickup:
    """`cfg` completed from its Airflow connection (unchanged when it names none).

    A key given as text is written once, 0600, under `key_dir` (the client loads keys from files).
    """
    if not cfg.airflow_conn_id:
        return cfg
    conn = lookup(cfg.airflow_conn_id)
    extra = conn.extra_dejson or {}
    private_key = cfg.private_key
    if private_key is None and extra.get("key_file"):
        private_key = Path(extra["key_file"])
    if private_key is None and extra.get("private_key"):
        key_dir.mkdir(parents=True, exist_ok=True)
        path = key_dir / f"{cfg.airflow_conn_id}.key"
        fd, tmp = tempfile.mkstemp(dir=key_dir)
        with os.fdopen(fd, "w") as f:
            f.write(extra["private_key"].strip() + "\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        private_key = path
    resolved = dataclasses.replace(
        cfg,
        host=cfg.host or conn.host,
        port=conn.port or cfg.port,
        user=cfg.user or conn.login,
        private_key=private_key,
        host_key=cfg.host_key or extra.get("host_key"),
    )
    if not resolved.private_key or not (resolved.host_key or resolved.known_hosts):
        raise ConfigError(
            f"Airflow connection {cfg.airflow_conn_id!r} lacks a private key or a host key "
            "(extras: private_key or key_file, host_key)"
        )
    return resolved
