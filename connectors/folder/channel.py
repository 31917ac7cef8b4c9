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
from flows.io import atomic
from flows.io.atomic import PARTNER_FILE_MODE
from flows.pipeline.channels import Address, OutboxKind
from flows.pipeline.intake import Intake


@dataclasses.dataclass
class FolderSender:
    """Writes rows' bytes to their destination paths, with the permissions `mode` (the partner's account reads
    its return flows: 0644 unless configured): each under a temporary name when sent, then all made durable with
    one sync and renamed into place when the sender exits cleanly (`flows.io.atomic.publish`): a partner never
    sees a file before its bytes are on disk. The dispatcher marks the rows sent after that exit."""

    mode: int = PARTNER_FILE_MODE
    _staged: list[tuple[Path, Path]] = dataclasses.field(default_factory=list)

    def __enter__(self) -> FolderSender:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        staged, self._staged = self._staged, []
        if exc_type is not None:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            return
        atomic.publish(staged)

    def send(self, item: OutboxItem, data: bytes) -> None:
        target = Path(item.destination)
        self._staged.append((atomic.stage(target, data, self.mode), target))


@dataclasses.dataclass
class FolderChannel:
    """Outbound: a partner's return flows go to its local ``out/`` folder (the channel of last resort)."""

    outbox_dir: Callable[[str], Path]  # partner id -> its out/ folder
    name: str = Channel.FOLDER.value
    ordered: bool = False
    file_mode: int = PARTNER_FILE_MODE  # RELAIS_RETURN_FILE_MODE
    durable_on_exit: bool = True  # its sender syncs the rows together when it exits (`flows.pipeline.dispatch`)

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
