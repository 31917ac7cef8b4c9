"""Where an invoice the reform's directory routes goes (docs/reform.md §4).

The line that routes it (`validators.context.InvoiceContext.reform_match`) names a platform:

- Relais itself (settings ``platform_id``): delivered locally as a public structure's invoice is, to
  ``delivery/<SIRET, else SIREN>/<routing code, else _>/<invoice id>.xml``; delivered, it is MISE_A_DISPOSITION;
- a partner's platform (its file's ``platform_id``): sent to that partner over its channel, as its return
  flows are (`flows.pipeline.channels.Channels.return_address`: AS2, SFTP or its folder), queued in the
  outbox; delivered, it is EN_COURS_ACHEMINEMENT (02, CDAR 201);
- a platform no partner is: written to ``delivery/platforms/<platform id>/<invoice id>.xml`` for ops to
  forward [choice], and EN_COURS_ACHEMINEMENT once written (it left Relais's hands for that platform).

The invoice records the line (``routed_by``), its platform (``routed_platform``) and whether it went away.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from flows.domain.model import Container, Invoice
from flows.domain.outbox import Address
from flows.pipeline.channels import Channels
from flows.pipeline.config import PipelineConfig

if TYPE_CHECKING:
    from flows.domain.reform_directory import DirectoryLine
    from validators.context import InvoiceContext


class Pipeline(Protocol):
    """What routing by the reform's directory reads of `flows.pipeline.process.Pipeline`."""

    @property
    def config(self) -> PipelineConfig: ...

    @property
    def channels(self) -> Channels: ...

    @property
    def platform_id(self) -> str: ...

    @property
    def platform_partner(self) -> Callable[[str], str | None]: ...


def _safe_component(value: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in value)[:100]
    return cleaned.strip(".") or "_"


def line_of(ctx: InvoiceContext) -> DirectoryLine | None:
    """The line that routes this invoice (None: the reform's directory does not route it)."""
    m = ctx.reform_match
    return m.line if m is not None else None


def _ext(container: Container | None) -> str:
    return ".pdf" if container is Container.PDF else ".xml"


def place(rt: Pipeline, inv: Invoice, line: DirectoryLine, container: Container | None) -> str:
    """Record the routing on `inv`; its folder target (a partner platform's address comes from `address`)."""
    platform = line.platform.id
    inv.routed_by, inv.routed_platform = line.identifier, platform
    inv.routed_away = platform != rt.platform_id
    name = f"{inv.id}{_ext(container)}"
    if not inv.routed_away:
        a = line.address
        code = a.routing_identifier or a.suffix
        where = rt.config.delivery_dir / (a.siret or a.siren) / (_safe_component(code) if code else "_")
        return str(where / name)
    return str(rt.config.delivery_dir / "platforms" / _safe_component(platform) / name)


def address(rt: Pipeline, inv: Invoice, container: Container | None) -> Address | None:
    """The partner channel's address of an invoice issued to a partner's platform (None: its folder target)."""
    if not inv.routed_away or inv.routed_platform is None:
        return None
    partner = rt.platform_partner(inv.routed_platform)
    if partner is None:
        return None
    return rt.channels.return_address(partner, f"{inv.id}{_ext(container)}")
