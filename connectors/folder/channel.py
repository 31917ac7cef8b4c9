"""The folder channel: files dropped in ``dropzones/<partner>/in``, return flows written to ``out/``.

The hosted SFTP server (`connectors.sftp.hosted.server`) writes into the same inboxes,
so its uploads come in through this channel's poll too (recorded as ``sftp``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from connectors.folder import dropzone
from flows.domain.model import Channel, Flow
from flows.domain.outbox import OutboxItem
from flows.io.atomic import PARTNER_FILE_MODE, write_atomic
from flows.pipeline.channels import Address, OutboxKind
from flows.pipeline.intake import Intake


@dataclasses.dataclass
class FolderSender:
    """Writes a row's bytes to its destination path atomically (temporary name, fsync, rename), with the
    permissions `mode` (the partner's account reads its return flows: 0644 unless configured)."""

    mode: int = PARTNER_FILE_MODE

    def __enter__(self) -> FolderSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def send(self, item: OutboxItem, data: bytes) -> None:
        write_atomic(Path(item.destination), data, self.mode)


@dataclasses.dataclass
class FolderChannel:
    """Outbound: a partner's return flows go to its local ``out/`` folder (the channel of last resort)."""

    outbox_dir: Callable[[str], Path]  # partner id -> its out/ folder
    name: str = Channel.FOLDER.value
    ordered: bool = False
    file_mode: int = PARTNER_FILE_MODE  # RELAIS_RETURN_FILE_MODE

    def return_address(self, partner_id: str, file_name: str) -> Address | None:
        return Address(self.name, partner_id, str(self.outbox_dir(partner_id) / file_name))

    def sender(self, kind: OutboxKind, partner_id: str | None) -> FolderSender:
        return FolderSender(self.file_mode)


@dataclasses.dataclass
class FolderPolling:
    """Inbound: scan every partner's inbox (`connectors.folder.dropzone`)."""

    intake: Intake
    dropzones_dir: Path
    stable_seconds: float
    name: str = Channel.FOLDER.value

    def poll(self, *, only_due: bool = False, held: frozenset[str] = frozenset()) -> list[Flow]:
        return dropzone.scan(self.intake, self.dropzones_dir, self.stable_seconds, held=held)
