"""The AS2 channel: messages pushed to Relais's endpoint (`connectors.as2.receiver`), return flows and
asynchronous MDNs sent to the partners' endpoints (`connectors.as2.sender`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from archive import Archive
from connectors.partners import Partner
from flows.domain.errors import ConfigError
from flows.domain.model import Channel
from flows.pipeline.channels import Address, OutboxKind
from flows.store import Store

if TYPE_CHECKING:
    from connectors.as2.sender import MdnSender, Sender


@dataclasses.dataclass
class As2Channel:
    """Outbound: return flows of partners whose ``[as2]`` section has a ``url``, in order; and MDNs."""

    partners: Callable[[], Mapping[str, Partner]]
    store: Store | None = None  # None: addresses only (`relais partners`), nothing can be sent
    archive: Archive | None = None
    name: str = Channel.AS2.value
    ordered: bool = True

    def return_address(self, partner_id: str, file_name: str) -> Address | None:
        partner = self.partners().get(partner_id)
        if partner is None or partner.as2 is None or not partner.as2.url:
            return None
        return Address(self.name, partner_id, file_name)

    def sender(self, kind: OutboxKind, partner_id: str | None) -> Sender | MdnSender:
        # Imported when first used: a process with no AS2 partner never loads httpx and the CMS code.
        from connectors.as2 import sender

        if kind is OutboxKind.MDN:
            return sender.MdnSender()
        if self.store is None or self.archive is None:
            raise ConfigError("this AS2 channel was built without a store: it cannot send")
        return sender.Sender(self.store, self.archive, self.partners().get(partner_id or ""))
