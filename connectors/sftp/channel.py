"""The SFTP channel: files fetched from partners' servers, return flows uploaded to them.

(Files partners upload to Relais's own hosted server land in the folder inboxes
and come in through the folder channel, recorded as ``sftp``.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from connectors.partners import Partner
from flows.domain import log
from flows.domain.model import Channel, Flow
from flows.pipeline.channels import Address, OutboxKind
from flows.pipeline.intake import Intake

if TYPE_CHECKING:
    from connectors.sftp.returns import Sender

_log = log.get("relais.sftp")


@dataclasses.dataclass
class SftpChannel:
    """Outbound: return flows of partners with an ``[sftp]`` section go to its ``return_dir``, in order."""

    partners: Callable[[], Mapping[str, Partner]]  # read when asked: the partner files may change
    keys_dir: Path
    name: str = Channel.SFTP.value
    ordered: bool = True

    def return_address(self, partner_id: str, file_name: str) -> Address | None:
        partner = self.partners().get(partner_id)
        if partner is None or partner.sftp is None:
            return None
        return Address(self.name, partner_id, f"{partner.sftp.return_dir.strip('/')}/{file_name}")

    def sender(self, kind: OutboxKind, partner_id: str | None) -> Sender:
        from connectors.sftp import returns  # when first used: no SFTP partner, no paramiko loaded

        return returns.Sender(self.partners().get(partner_id or ""), self.keys_dir)


@dataclasses.dataclass
class SftpPolling:
    """Inbound: poll each partner's server (`connectors.sftp.pickup`); one that fails never stops the others."""

    intake: Intake
    partners: Callable[[], Mapping[str, Partner]]
    keys_dir: Path
    name: str = Channel.SFTP.value

    def poll(self, *, only_due: bool = False, held: frozenset[str] = frozenset()) -> list[Flow]:
        chosen = [p for p in self.partners().values() if p.sftp is not None and p.id not in held]
        if not chosen:
            return []
        from connectors.sftp import airflow_conn, pickup  # when first used: no SFTP partner, no paramiko

        resolved = [
            dataclasses.replace(p, sftp=airflow_conn.resolve(p.sftp, self.keys_dir))
            for p in chosen
            if p.sftp is not None
        ]
        flows: list[Flow] = []
        for report in pickup.poll_all(self.intake, resolved, only_due=only_due).values():
            flows.extend(report.flows)
            for problem in report.errors:
                _log.warning("sftp.poll_problem", partner=report.partner, problem=problem, fatal=report.fatal)
        return flows
