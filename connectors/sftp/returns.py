"""Return flows to a partner's SFTP server: uploaded under a temporary name, then renamed."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from connectors.partners import Partner
from connectors.sftp import airflow_conn
from flows.domain.errors import ConfigError
from flows.domain.outbox import OutboxItem

if TYPE_CHECKING:  # paramiko is imported on first use only
    from connectors.sftp.client import SftpConnection


class Sender:
    """One connection to a partner's server for a batch of return flows (sent in order)."""

    def __init__(self, partner: Partner | None, key_dir: Path) -> None:
        if partner is None or partner.sftp is None:
            raise ConfigError("no SFTP configuration for this partner any more")
        self.partner = partner
        self.cfg = airflow_conn.resolve(partner.sftp, key_dir)
        self._conn: SftpConnection | None = None
        self._folders: set[str] = set()

    def __enter__(self) -> Sender:
        from connectors.sftp.client import connect

        self._conn = connect(self.cfg)
        self._conn.__enter__()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            self._conn.__exit__(exc_type, exc, tb)

    def send(self, item: OutboxItem, data: bytes) -> None:
        """Upload one return flow; its destination is ``<folder>/<name>`` on the partner's server."""
        assert self._conn is not None
        folder, _, name = item.destination.rpartition("/")
        folder = folder or "."
        if folder not in self._folders:
            self._conn.makedirs(folder)
            self._folders.add(folder)
        self._conn.put_atomic(data, folder, name)
