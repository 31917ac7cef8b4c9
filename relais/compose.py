"""The composition root: everything a Relais process needs, built once, in one place.

The CLI, the Airflow tasks and the servers open one `Runtime` and hand its
parts to the core, which takes what it needs explicitly: `pipeline`
(`flows.pipeline.process.Pipeline`), `intake` (`flows.pipeline.intake.Intake`), `outbound`
(`flows.pipeline.dispatch.Outbound`), `channels` (`flows.pipeline.channels.Channels`). Nothing
below ``relais/`` imports this module.

Registering a channel, an archive backend or a validation pool happens here:
``docs/architecture.md`` lists the extension points.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Callable, Mapping

from archive import Archive, LocalArchive
from connectors import partners as partners_config
from connectors.as2.channel import As2Channel
from connectors.folder.channel import FolderChannel, FolderPolling
from connectors.partners import Partner
from connectors.sftp.channel import SftpChannel, SftpPolling
from connectors.webhook.channel import WebhookChannel
from flows.domain import log
from flows.domain.model import Container, utcnow
from flows.domain.outbox import Address
from flows.io import safearchive
from flows.pipeline import deadlines
from flows.pipeline.cdar_out import CdarOut
from flows.pipeline.channels import Channels, PollingChannel
from flows.pipeline.config import PipelineConfig
from flows.pipeline.dispatch import Outbound
from flows.pipeline.intake import Intake
from flows.pipeline.process import Pipeline
from flows.pipeline.status_returns import StatusReturns
from flows.store import Store, Structure
from flows.store.partners import PartnerMode
from relais.settings import Settings
from validators.document import JudgeConfig
from validators.pool import PoolConfig, ValidationPool
from validators.xsd import XsdValidator


def channels(
    settings: Settings,
    partners: Callable[[], Mapping[str, Partner]],
    store: Store | None = None,
    archive: Archive | None = None,
    intake: Intake | None = None,
) -> Channels:
    """The registered channels. Return flows go by AS2 when the partner has an AS2 url, else by SFTP
    when it has a server, else to its local out/ folder; files come in by SFTP poll, then folder scan
    (hosted SFTP uploads and AS2 messages are pushed: their servers call `flows.pipeline.intake` themselves).
    Without a store, archive and intake: addresses only (what `relais partners` shows)."""
    polling: list[PollingChannel] = []
    if intake is not None:
        polling = [
            SftpPolling(intake, partners, settings.keys_dir),
            FolderPolling(intake, settings.dropzones_dir, settings.stable_seconds),
        ]
    return Channels(
        [
            As2Channel(partners, store, archive),
            SftpChannel(partners, settings.keys_dir),
            FolderChannel(settings.outbox_dir, file_mode=settings.return_file_mode),
            WebhookChannel(store),  # the flow service's events (never a return address)
        ],
        polling=polling,
    )


_log = log.get("relais.delivery")

DeliverTo = Callable[[Structure | None, str | None, str, Container | None], Address | None]


def edi_delivery(partners: Callable[[], Mapping[str, Partner]], channels: Channels) -> DeliverTo:
    """The EDI rule, `flows.pipeline.process.Pipeline.deliver_to`: a structure whose directory entry receives by
    EDI (``receives_by_edi``, recevoirDonneesViaEDI) gets its routed invoices pushed to its own channel,
    when a partner file has the structure's SIRET as its ``id`` (connectors/partners.py). The channel is
    chosen as for a partner's return flows (`Channels.return_address`): AS2 when its ``[as2]`` has a
    ``url``, else its ``[sftp]`` server's ``return_dir``, else its folder ``dropzones/<siret>/out/``; the
    file is named ``<invoice id>.xml`` (``.pdf`` for a Factur-X). With no such partner (or a partner file
    that cannot be used) the invoice goes to the ``delivery/`` folder as any other, and that is logged."""

    def deliver_to(
        structure: Structure | None, service_code: str | None, invoice_id: str, container: Container | None
    ) -> Address | None:
        if structure is None or not structure.receives_by_edi:
            return None
        known = partners()
        if structure.siret not in known:
            _log.warning(
                "delivery.edi_partner_missing",
                siret=structure.siret,
                invoice_id=invoice_id,
                delivered_to="delivery folder",
                partner_file_problems=getattr(known, "problems", {}).get(structure.siret),
            )
            return None
        ext = ".pdf" if container is Container.PDF else ".xml"
        return channels.return_address(structure.siret, f"{invoice_id}{ext}")

    return deliver_to


@dataclasses.dataclass
class Runtime:
    """One process's store, archive, validation pool, partners and channels."""

    settings: Settings
    store: Store
    archive: Archive

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True) -> Runtime:
        """With ``migrate=False`` (Airflow tasks) the store's schema is only checked, never changed."""
        settings.ensure_dirs()
        XsdValidator(settings.ubl_xsd_dir, settings.cii_xsd)  # a missing XSD is reported now, not mid-flow
        archive: Archive
        if settings.archive_url and settings.archive_url.startswith("s3://"):
            from archive.s3 import S3Archive  # boto3 is imported only by a process that archives on S3

            archive = S3Archive.from_url(
                settings.archive_url,
                endpoint_url=settings.s3_endpoint_url,
                retention_years=settings.archive_retention_years,
                spool_dir=settings.staging_dir / "s3",
            )
        else:
            archive = LocalArchive(settings.archive_dir)  # the default: the folder archive/ under the home
        return cls(
            settings=settings,
            store=Store.open(settings.database_url, schema=settings.database_schema, migrate=migrate),
            archive=archive,
        )

    @functools.cached_property
    def pool(self) -> ValidationPool:
        s = self.settings
        return ValidationPool(
            PoolConfig(
                judge=JudgeConfig(
                    ubl_xsd_dir=s.ubl_xsd_dir,
                    cii_xsd=s.cii_xsd,
                    rules_dir=s.rules_dir,
                    max_xml_bytes=s.max_xml_bytes,
                    rules_engine=s.rules_engine,
                    native_cache=s.native_cache_dir,
                ),
                workers=s.workers,
                seconds_per_document=s.seconds_per_document,
                worker_memory_mb=s.worker_memory_mb,
            )
        )

    @functools.cached_property
    def partners(self) -> partners_config.PartnerSet:
        """The good partners by id (a mapping); a bad partner file is left out and reported in
        ``.problems`` (connectors/partners.py), so it does not stop the other partners."""
        return partners_config.load(self.settings.partners_dir)

    def _partners(self) -> partners_config.PartnerSet:
        return self.partners

    @functools.cached_property
    def intake(self) -> Intake:
        return Intake(self.store, self.archive, self.settings.staging_dir)

    @functools.cached_property
    def channels(self) -> Channels:
        return channels(self.settings, self._partners, self.store, self.archive, self.intake)

    @functools.cached_property
    def config(self) -> PipelineConfig:
        """The pipeline's settings (`Settings.pipeline_config`), the billing circuits' deadlines among them;
        without the validation pool, for steps that judge nothing (`apply_deadlines`)."""
        return self.settings.pipeline_config()

    def apply_deadlines(self, now: dt.datetime | None = None) -> int:
        """The billing circuits' scheduled step (`flows.pipeline.deadlines.apply`) at `now` (the clock by
        default): the pieces moved on."""
        return deadlines.apply(self.store, now or utcnow(), self.config.deadlines)

    @functools.cached_property
    def pipeline(self) -> Pipeline:
        return Pipeline(
            config=self.config,
            store=self.store,
            archive=self.archive,
            judge=self.pool,
            channels=self.channels,
            deliver_to=edi_delivery(self._partners, self.channels),
            qualification=lambda partner_id: self.partner_mode(partner_id) == "qualification",
            language=self.partner_language,
            platform_of=self.partner_platform,
            vocabulary=self.partner_vocabulary,
            cdar=self.cdar_out,
            platform_id=self.settings.platform_id,
            platform_partner=self.platform_partner,
        )

    def platform_partner(self, platform_id: str) -> str | None:
        """The partner whose file names `platform_id` (a platform of the reform), None when none does."""
        return next((p.id for p in self.partners.values() if p.platform_id == platform_id), None)

    def partner_mode(self, partner_id: str, switches: Mapping[str, PartnerMode] | None = None) -> str:
        """A partner's mode, "qualification" or "production": ops' latest switch (`Store.partner_modes`,
        read each time: a switch made by another process counts at once), else its partner file's ``mode``
        (none: production). `switches` are the store's, when the caller read them already."""
        switch = (self.store.partner_modes() if switches is None else switches).get(partner_id)
        if switch is not None:
            return switch.mode
        partner = self.partners.get(partner_id)
        return partner.mode if partner is not None else "production"

    def switch_partner_mode(self, partner_id: str, mode: str, by: str, reason: str | None = None) -> str | None:
        """Ops switch a partner to `mode` ("production" after its qualification, or back to
        "qualification"): stored (`Store.switch_partner_mode`, over the partner file) and audited under the
        principal `by` (``cli:<user>``, ``web:<user>``). The next flow claimed follows it. Returns None when
        done, else why not (French, audited as refused): an unknown partner, or already in that mode."""
        action = f"partner.{mode}"
        refused = None
        if self.partners.get(partner_id) is None:
            refused = f"partenaire inconnu : {partner_id} (aucun fichier de partenaire valide dans {self.settings.partners_dir})"
        elif (current := self.partner_mode(partner_id)) == mode:
            refused = f"{partner_id} est déjà en {mode}"
        if refused is not None:
            self.store.audit(by, action, target=partner_id, outcome="refused", http_status=None, detail=refused)
            return refused
        self.store.switch_partner_mode(partner_id, mode, by, reason)
        detail = f"{current} -> {mode}" + (f" ({reason})" if reason else "")
        self.store.audit(by, action, target=partner_id, outcome="ok", http_status=None, detail=detail)
        return None

    def partner_vocabulary(self, partner_id: str) -> str:
        """The vocabulary of a partner's status return flows (its partner file's ``status_vocabulary``; "cpp")."""
        partner = self.partners.get(partner_id)
        return partner.status_vocabulary if partner is not None else "cpp"

    def partner_platform(self, partner_id: str) -> str | None:
        """A partner's registration number as a platform of the reform (its partner file's ``platform_id``)."""
        partner = self.partners.get(partner_id)
        return partner.platform_id if partner is not None else None

    def partner_language(self, partner_id: str) -> str:
        """The language of a partner's return flows' free texts (its partner file's ``language``; "fr")."""
        partner = self.partners.get(partner_id)
        return partner.language if partner is not None else "fr"

    @functools.cached_property
    def status_returns(self) -> StatusReturns:
        """Status return flows (flows/pipeline/status_returns.py): grouped per sender over the settings' interval,
        in each partner's vocabulary, MISE_EN_PAIEMENT left out for structures that do not report it."""

        def payment_not_reported(siret: str | None) -> bool:
            structure = self.store.structure_flags(siret) if siret else None
            return bool(structure is not None and structure.payment_status_not_reported)

        return StatusReturns(
            self.store,
            self.archive,
            self.channels,
            interval_seconds=self.settings.status_interval_seconds,
            vocabulary=self.partner_vocabulary,
            language=self.partner_language,
            payment_not_reported=payment_not_reported,
            cdar=self.cdar_out,
        )

    @functools.cached_property
    def cdar_out(self) -> CdarOut:
        """Relais as a platform of the reform, and its partners': the CDAR messages' parties (docs/reform.md)."""
        return CdarOut(
            platform_id=self.settings.platform_id,
            platform_name=self.settings.platform_name,
            partner_platform=self.partner_platform,
        )

    @functools.cached_property
    def outbound(self) -> Outbound:
        return Outbound(
            self.store, self.archive, self.channels, self.archive_limits, file_mode=self.settings.return_file_mode
        )

    @functools.cached_property
    def archive_limits(self) -> safearchive.ArchiveLimits:
        return safearchive.ArchiveLimits()

    def close(self) -> None:
        if "pool" in self.__dict__:
            self.pool.close()
        self.store.close()
