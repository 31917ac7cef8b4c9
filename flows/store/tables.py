"""SQLAlchemy table definitions of the store (migrations live in flows/store/migrations)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: The invoice statuses where a piece waits for an actor of its billing circuit: the statuses of
#: `flows.domain.circuits.STEP_OF` that Relais sets (tests/flows/store/test_circuit_waits.py checks it), in
#: its order. The partial index ``ix_invoices_waiting`` (migration 0016) covers exactly them: a query reads it
#: with ``status IN WAITING_STATUSES`` written as here (SQLite uses a partial index only for the same terms).
WAITING_STATUSES = ("20", "28", "24", "30", "31", "40", "41", "50")

flow_ids = sa.Table(
    "flow_ids",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

flows = sa.Table(
    "flows",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("partner", sa.String(128), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("original_name", sa.String(1024), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("flow_code", sa.String(40)),
    sa.Column("container", sa.String(16)),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duplicate_of", sa.String(32)),
    sa.Column("directory_version", sa.String(64)),
    sa.Column("invoice_count", sa.Integer, nullable=False, default=0),
    sa.Column("rejected_count", sa.Integer, nullable=False, default=0),
    sa.Column("profile", sa.String(20)),
    sa.Column("rulesets", sa.Text),
    sa.Column("incidents", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("retry_at", sa.DateTime(timezone=True)),  # IN_INCIDENTE: when it is tried again (None: parked)
    sa.Column("claimed_by", sa.String(200)),  # IN_EN_COURS_TRAITEMENT_CPP: the worker (flows.domain.lease.WORKER)
    sa.Column("lease_until", sa.DateTime(timezone=True)),  # ... until when its claim holds without renewal
    # Times ops reopened this closed flow (IN_REJETE, IN_INTEGRE_PARTIEL): its accepted invoices are kept,
    # the rejected ones judged again, and its new integration report says which one it replaces.
    sa.Column("reopened", sa.Integer, nullable=False, default=0, server_default="0"),
    # Why ops last asked for this flow to be processed again (`relais flows reprocess --reason`): the
    # history entries of its rerun say so.
    sa.Column("reprocess_reason", sa.Text),
    # Processed while its partner was in qualification (connectors/partners.py, `mode`): judged and answered
    # as in production, but nothing delivered, no number taken, not shown to recipients (set when claimed).
    sa.Column("qualification", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Index("ix_flows_partner_sha", "partner", "sha256"),
    sa.Index("ix_flows_status", "status"),
    sa.Index("ix_flows_partner_id", "partner", "id"),  # the web list filtered by partner, newest first
    sa.Index("ix_flows_status_id", "status", "id"),
    # The dashboard's date windows, read from the index alone on PostgreSQL (INCLUDE).
    sa.Index(
        "ix_flows_received",
        "received_at",
        postgresql_include=["status", "partner", "invoice_count", "rejected_count"],
    ),
)

invoices = sa.Table(
    "invoices",
    metadata,
    sa.Column("id", sa.String(48), primary_key=True),
    sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id"), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("entry_name", sa.String(1024), nullable=False),
    sa.Column("syntax", sa.String(20)),
    sa.Column("profile", sa.String(20)),
    sa.Column("status", sa.String(2), nullable=False),
    sa.Column("number", sa.String(200)),
    sa.Column("type_code", sa.String(10)),
    sa.Column("issue_date", sa.Date),
    sa.Column("supplier_id", sa.String(100)),
    sa.Column("supplier_id_type", sa.String(2)),
    sa.Column("buyer_siret", sa.String(100)),
    sa.Column("service_code", sa.String(100)),
    sa.Column("commitment_number", sa.String(100)),
    sa.Column("currency", sa.String(3)),
    sa.Column("total_without_vat", sa.Numeric(19, 4)),
    sa.Column("total_vat", sa.Numeric(19, 4)),
    sa.Column("total_with_vat", sa.Numeric(19, 4)),
    sa.Column("amount_due", sa.Numeric(19, 4)),
    sa.Column("delivered_to", sa.String(1024)),
    # Billing frameworks and circuits (migration 0015): flows.domain.frameworks, flows.domain.circuits
    sa.Column("framework", sa.String(3), nullable=False, server_default="A1"),
    sa.Column("previous_number", sa.String(200)),
    sa.Column("validator_1", sa.String(100)),
    sa.Column("validator_2", sa.String(100)),
    sa.Column("moe_siret", sa.String(100)),
    sa.Column("moa_siret", sa.String(100)),
    sa.Column("billing_file_id", sa.String(48)),
    sa.Column("previous_id", sa.String(48)),
    sa.Column("holder", sa.String(100)),
    sa.Column("due_at", sa.DateTime(timezone=True)),
    # The reform's routing (migration 0018): the directory line that routed a B2B invoice, its platform,
    # and whether it was issued to another platform (delivered: EN_COURS_ACHEMINEMENT, not MISE_A_DISPOSITION).
    sa.Column("routed_by", sa.String(125)),
    sa.Column("routed_platform", sa.String(20)),
    sa.Column("routed_away", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index("ix_invoices_flow_position", "flow_id", "position", unique=True),
    sa.Index("ix_invoices_billing_file", "billing_file_id"),
    sa.Index("ix_invoices_previous", "previous_id"),
    sa.Index("ix_invoices_holder_status", "holder", "status"),
    sa.Index("ix_invoices_due", "due_at"),
    sa.Index(
        "ix_invoices_waiting",
        "status",
        "due_at",
        "id",
        postgresql_where=sa.column("status").in_(WAITING_STATUSES),
        sqlite_where=sa.column("status").in_(WAITING_STATUSES),
    ),
    sa.Index("ix_invoices_supplier_number", "supplier_id", "number", "issue_date"),
    sa.Index("ix_invoices_number", "number"),  # the web search by invoice number or SIRET
    sa.Index("ix_invoices_buyer_siret", "buyer_siret"),
)

validation_errors = sa.Table(
    "validation_errors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id"), nullable=False),
    sa.Column("invoice_id", sa.String(48)),
    sa.Column("rule", sa.String(64), nullable=False),
    sa.Column("flag", sa.String(8), nullable=False),
    sa.Column("location", sa.Text, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    # Set when the flow is processed again (reprocessed, reopened): a finding of an earlier run, kept and
    # shown as such; readers of the current findings leave these out (`flows.store.records.current`).
    sa.Column("superseded_at", sa.DateTime(timezone=True)),
    sa.Index("ix_errors_flow_invoice", "flow_id", "invoice_id"),
    sa.Index("ix_errors_rule_flow", "rule", "flow_id"),  # /rejects/{rule}
)

directory_versions = sa.Table(
    "directory_versions",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("structures", sa.Integer, nullable=False),
)

#: Associations (billing files): each piece is followed by at most one piece that is not refused. The
#: primary key makes it hold under concurrency (two followers judged at once: the second insert loses,
#: as for `invoice_numbers`); a follower's row goes when the follower is refused or rejected.
piece_links = sa.Table(
    "piece_links",
    metadata,
    sa.Column("previous_id", sa.String(48), primary_key=True),
    sa.Column("invoice_id", sa.String(48), nullable=False),
    sa.Index("ix_piece_links_invoice", "invoice_id"),  # a refused follower frees its link (release_link)
)

#: Registered actors of the billing circuits (titulaires, mandataires, MOE, MOA) that are not directory
#: structures, versioned like the directory: each import or addition is a new version (migration 0015).
actor_versions = sa.Table(
    "actor_versions",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("actors", sa.Integer, nullable=False),
)

actors = sa.Table(
    "actors",
    metadata,
    sa.Column("version", sa.String(64), sa.ForeignKey("actor_versions.version"), primary_key=True),
    sa.Column("siret", sa.String(14), primary_key=True),
    sa.Column("role", sa.String(16), primary_key=True),  # titulaire, mandataire, moe, moa
    sa.Column("name", sa.String(200), nullable=False),
)

structures = sa.Table(
    "structures",
    metadata,
    sa.Column("version", sa.String(64), sa.ForeignKey("directory_versions.version"), primary_key=True),
    sa.Column("siret", sa.String(14), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("service_code_required", sa.Boolean, nullable=False),
    sa.Column("ej_required", sa.Boolean, nullable=False),
    sa.Column("ej_or_service", sa.Boolean, nullable=False),
    # statutMiseEnPaiementNestPasRemonte: MISE_EN_PAIEMENT is never sent back to the supplier
    sa.Column("payment_status_not_reported", sa.Boolean, nullable=False, server_default=sa.false()),
    # recevoirDonneesViaEDI: invoices are pushed to the structure's own channel (a partner file for its SIRET)
    sa.Column("receives_by_edi", sa.Boolean, nullable=False, server_default=sa.false()),
    # the billing frameworks it accepts, space separated (cadres de facturation, "A1 A9"); NULL: all (0015)
    sa.Column("frameworks", sa.String(200)),
)

services = sa.Table(
    "services",
    metadata,
    sa.Column("version", sa.String(64), primary_key=True),
    sa.Column("siret", sa.String(14), primary_key=True),
    sa.Column("code", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(128), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),  # flows.domain.outbox.OutboxKind
    sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id")),  # None: an AS2 MDN for a refused message
    sa.Column("invoice_id", sa.String(48)),
    sa.Column("position", sa.Integer),  # a delivery: the invoice's position in its flow
    # Where it goes (flows.domain.outbox.Address): the channel, its partner (or recipient SIRET), the destination
    # in the channel's terms (a path, a remote path, a file name sent by AS2, an MDN URL).
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("partner", sa.String(128)),
    sa.Column("destination", sa.String(1024), nullable=False),
    sa.Column("archive_sha256", sa.String(64)),
    # flows.domain.outbox.OutboxStatus: pending, sent, held (a delivery waiting for its piece's circuit: never
    # sent as such), or superseded (a row of an earlier run of a reprocessed flow, never sent: kept, its key
    # suffixed with ``~<id>`` so that the rerun may queue its own).
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("leased_by", sa.String(200)),  # the dispatcher sending it now (flows.domain.lease.WORKER)
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Index("ix_outbox_status_flow", "status", "flow_id"),
    sa.Index("ix_outbox_flow", "flow_id", "id"),  # a flow's rows (its page, its reprocessing)
    sa.Index("ix_outbox_invoice", "invoice_id"),  # an invoice's deliveries (a received CDAR line, migration 0020)
)

as2_messages = sa.Table(
    "as2_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("direction", sa.String(3), nullable=False),  # "in" (received) | "out" (sent)
    sa.Column("message_id", sa.String(998), nullable=False),
    sa.Column("partner", sa.String(128)),  # None: unknown AS2-From
    sa.Column("as2_from", sa.String(128), nullable=False),
    sa.Column("as2_to", sa.String(128), nullable=False),
    sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id")),  # None: refused, or not recorded yet
    sa.Column("outbox_id", sa.Integer),  # out: the return flow's outbox row
    sa.Column("raw_sha256", sa.String(64)),  # in: the HTTP body as received; out: as sent
    sa.Column("headers", sa.Text),  # JSON of the HTTP headers that matter
    sa.Column("mic", sa.String(200)),
    sa.Column("mic_digest", sa.String(20)),
    sa.Column("mdn_mode", sa.String(8)),  # "sync" | "async" | None (no MDN requested)
    sa.Column("mdn_target", sa.String(1024)),  # async: Receipt-Delivery-Option
    sa.Column("mdn_status", sa.String(80), nullable=False),
    sa.Column("mdn_archive_sha256", sa.String(64)),
    sa.Column("detail", sa.Text),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("partner", "message_id", "direction", name="uq_as2_partner_message"),
    sa.Index("ix_as2_flow", "flow_id"),
    sa.Index("ix_as2_message_id", "message_id", "direction"),
)

# ---- the invoice lifecycle (flows/domain/lifecycle.py, flows/pipeline/status_changes.py) ----------------------

invoice_history = sa.Table(
    "invoice_history",
    metadata,
    # Append-only: one row per status an invoice took, never updated nor deleted (triggers refuse both,
    # migration 0011); `invoices.status` is the latest. No foreign key: the invoice row is the current
    # state (a reprocessed flow's rejected invoices are recorded again), its history outlives it.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("invoice_id", sa.String(48), nullable=False),
    sa.Column("partner", sa.String(128), nullable=False),  # the sender, to whom the change is reported
    sa.Column("status", sa.String(2), nullable=False),
    sa.Column("previous", sa.String(2)),  # None: the status the invoice was recorded with
    sa.Column("actor", sa.String(16), nullable=False),  # flows.domain.lifecycle.Actor
    sa.Column(
        "source", sa.String(16), nullable=False
    ),  # flows.pipeline.status_changes.Source: api, platform, return_flow
    sa.Column("reason", sa.Text),
    sa.Column("reason_code", sa.String(40)),  # flows.domain.reasons (migration 0015)
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_history_invoice", "invoice_id", "id"),
    sa.Index("ix_history_partner", "partner", "id"),
)

status_returns = sa.Table(
    "status_returns",
    metadata,
    # One status return flow sent to a partner: the history rows first_id..last_id (its entries), so
    # a partner's changes are reported once each, in order (flows/pipeline/status_returns.py).
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("partner", sa.String(128), nullable=False),
    sa.Column("first_history_id", sa.Integer, nullable=False),
    sa.Column("last_history_id", sa.Integer, nullable=False),
    sa.Column("entries", sa.Integer, nullable=False),
    sa.Column("archive_sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("partner", "first_history_id", name="uq_status_returns_partner_first"),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    # Bearer tokens of the HTTP API (relais/api): only a hash is kept; the token is shown once.
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # "recipient" | "partner"
    sa.Column("siret", sa.String(14)),  # recipient: its structure
    sa.Column("service_code", sa.String(100)),  # recipient: one of its services only (None: all)
    sa.Column("partner", sa.String(128)),  # partner: the sender
    sa.Column("secret_hash", sa.String(128), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

api_uploads = sa.Table(
    "api_uploads",
    metadata,
    # The "mode API": an upload's Idempotency-Key, so that a retried POST /api/v1/flows makes no second flow.
    sa.Column("partner", sa.String(128), primary_key=True),
    sa.Column("idempotency_key", sa.String(200), primary_key=True),
    sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    # Every API request that changes or is refused something: who, what, on what, and the outcome.
    # Append-only: triggers refuse UPDATE and DELETE (migration 0011).
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column(
        "principal", sa.String(200), nullable=False
    ),  # "recipient:<siret>[/<service>]", "partner:<id>", "anonymous"
    sa.Column("action", sa.String(64), nullable=False),  # e.g. "invoice.status", "flow.upload", "auth"
    sa.Column("target", sa.String(200)),  # an invoice or flow id
    sa.Column("outcome", sa.String(16), nullable=False),  # "ok" | "refused" | "error"
    sa.Column("http_status", sa.Integer),
    sa.Column("detail", sa.Text),
    sa.Index("ix_audit_target", "target"),
    sa.Index("ix_audit_principal_id", "principal", "id"),
    sa.Index("ix_audit_action_id", "action", "id"),
    sa.Index("ix_audit_at", "at"),
)

audit_refusals = sa.Table(
    "audit_refusals",
    metadata,
    # Refusals of clients not known yet (no session, no valid token), counted per (client address, minute,
    # action) rather than one audit_log row each: an anonymous client cannot grow the store without bound.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("client", sa.String(64), nullable=False),  # the address the server saw ("?" when unknown)
    sa.Column("minute", sa.DateTime(timezone=True), nullable=False),  # the refusals' minute (UTC, truncated)
    sa.Column("action", sa.String(64), nullable=False),  # e.g. "web.login", "invoice.status"
    sa.Column("principal", sa.String(200), nullable=False),  # "web:anonymous", "anonymous"
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_status", sa.Integer),
    sa.Column("last_target", sa.String(200)),
    sa.Column("last_detail", sa.Text),
    sa.UniqueConstraint("client", "minute", "action", name="uq_audit_refusals_key"),
    sa.Index("ix_audit_refusals_minute", "minute"),
)

invoice_numbers = sa.Table(
    "invoice_numbers",
    metadata,
    # The numbers taken: one accepted invoice per (supplier, number, year). The primary key makes two
    # flows judged at the same moment unable to both accept the same number (RLS-P01). A status that
    # frees the number (flows.domain.lifecycle.InvoiceStatus.frees_number) deletes its row.
    sa.Column("supplier_id", sa.String(100), primary_key=True),
    sa.Column("number", sa.String(200), primary_key=True),
    sa.Column("year", sa.Integer, primary_key=True),
    sa.Column("invoice_id", sa.String(48), nullable=False),
    sa.Index("ix_invoice_numbers_invoice", "invoice_id"),
)

web_users = sa.Table(
    "web_users",
    metadata,
    # People who log in to the "Suivi des flux" web application (relais/web): `relais users add`.
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),  # "ops" | "partner" | "viewer"
    sa.Column("partner", sa.String(100)),  # the partner a "partner" user sees (and only that one)
    sa.Column("password_hash", sa.Text),  # argon2id; None for a user known only through OpenID Connect
    sa.Column("disabled", sa.Boolean, nullable=False, default=False, server_default=sa.false()),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # The OpenID Connect identity the account is linked to, stored at its first sign-in through the
    # provider (relais/web/auth/oidc.py): a later sign-in with the same name but another (issuer, sub) is refused.
    sa.Column("oidc_issuer", sa.String(300)),
    sa.Column("oidc_sub", sa.String(255)),
    sa.Index("ux_web_users_oidc", "oidc_issuer", "oidc_sub", unique=True),
)

web_sessions = sa.Table(
    "web_sessions",
    metadata,
    # Open and ended sessions of the web application (relais/web/auth/sessions.py). The browser's signed cookie
    # holds a random session token; only its SHA-256 is stored here (`id`), so that a copy of the table
    # opens no session. Rows are ended (revoked_at), never reopened.
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("user_name", sa.String(100), sa.ForeignKey("web_users.name"), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),  # written at most once a minute
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    sa.Column("revoked_why", sa.String(200)),  # "logout", "password changed", "user disabled", ...
    sa.Column("client", sa.String(100)),  # the address it was opened from
    sa.Column("user_agent", sa.String(300)),
    sa.Index("ix_web_sessions_user", "user_name", "revoked_at"),
)

partner_pauses = sa.Table(
    "partner_pauses",
    metadata,
    # Partners whose intake ops paused (relais/web, `POST /partners/{p}/pause`): their files wait.
    sa.Column("partner", sa.String(100), primary_key=True),
    sa.Column("paused_by", sa.String(200), nullable=False),
    sa.Column("paused_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text),
)

partner_modes = sa.Table(
    "partner_modes",
    metadata,
    # Ops' switches of a partner between "qualification" and "production" (`relais partners production P`,
    # the landing page's button). Append-only (triggers, migration 0014): the latest row is the partner's
    # mode, over its partner file's `mode`; the rows are the history of its raccordement.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("partner", sa.String(128), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),  # "qualification" | "production"
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("by", sa.String(200), nullable=False),  # "web:<user>", "cli:<os user>"
    sa.Column("reason", sa.Text),
    sa.Index("ix_partner_modes_partner", "partner", "id"),
)

cdar_messages = sa.Table(
    "cdar_messages",
    metadata,
    # The reform's lifecycle messages (CDAR D22B) sent ("out") and received ("in"), migration 0017;
    # flows/store/cdar.py. Unique per (direction, issuer, message id): a replay is applied once.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("direction", sa.String(3), nullable=False),  # "in" | "out"
    sa.Column("message_id", sa.String(200), nullable=False),  # ExchangedDocument/ID
    sa.Column("issuer", sa.String(200), nullable=False),  # "<scheme>:<id>" of IssuerTradeParty (out: Relais)
    sa.Column("partner", sa.String(128)),  # out: to whom; in: from whom (None: not a known partner)
    sa.Column("flow_id", sa.String(32)),  # in: the flow that carried it; out: the flow it reports on, if any
    sa.Column("return_id", sa.String(48)),  # out: the status return (or integration report) it is
    sa.Column("sha256", sa.String(64), nullable=False),  # the archived message
    sa.Column("lines", sa.Integer, nullable=False),  # its AcknowledgementDocuments
    sa.Column("outcome", sa.String(24), nullable=False),  # flows.store.cdar.Outcome
    sa.Column("detail", sa.Text),  # why refused / the incident, readable
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("direction", "issuer", "message_id", name="uq_cdar_message"),
    sa.Index("ix_cdar_messages_partner", "partner", "id"),
    sa.Index("ix_cdar_messages_flow", "flow_id"),
)

cdar_lines = sa.Table(
    "cdar_lines",
    metadata,
    # One per AcknowledgementDocument of a cdar_messages row (its position, from 1).
    sa.Column("message", sa.Integer, sa.ForeignKey("cdar_messages.id"), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("invoice_id", sa.String(48)),  # None: no invoice Relais knows (refused, RLS-C02) or a flow-level 501
    sa.Column("invoice_number", sa.String(200), nullable=False),  # BT-1 as the message names it
    sa.Column("status", sa.String(3), nullable=False),  # ProcessConditionCode
    sa.Column("reason_code", sa.String(40)),
    sa.Column("outcome", sa.String(16), nullable=False),  # "written" (out) | "applied" | "refused" (in)
    sa.Column("rule", sa.String(40)),  # in, refused: the rule (RLS-C..)
    sa.Column("history_id", sa.Integer),  # out: the history entry written; in: the one appended
    sa.Column("amounts", sa.Text),  # JSON [{"type": "MEN", "amount": "120.00", "vat_rate": "20.00"}] (212)
    sa.Index("ix_cdar_lines_invoice", "invoice_id"),
)

flow_service_flows = sa.Table(
    "flow_service_flows",
    metadata,
    # What a flow deposited through the AFNOR flow service declared (migration 0019, flows/store/flow_service.py).
    sa.Column("flow_id", sa.String(32), sa.ForeignKey("flows.id"), primary_key=True),
    sa.Column("partner", sa.String(128), nullable=False),
    sa.Column("tracking_id", sa.String(64)),  # the sender's own id (the search's trackingId; its idempotence key)
    sa.Column("flow_syntax", sa.String(16), nullable=False),  # CII | UBL | Factur-X | CDAR
    sa.Column("flow_profile", sa.String(24)),  # as declared (None: computed)
    sa.Column("processing_rule", sa.String(24)),  # as declared (None: computed)
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_flow_service_tracking", "partner", "tracking_id"),
)

webhooks = sa.Table(
    "webhooks",
    metadata,
    # A partner's webhook subscriptions of the AFNOR flow service (migration 0019); never deleted, only marked.
    sa.Column("id", sa.String(36), primary_key=True),  # a UUID (the contract's WebhookId)
    sa.Column("partner", sa.String(128), nullable=False),
    sa.Column("callback_url", sa.String(2048), nullable=False),
    sa.Column("flow_types", sa.Text),  # JSON list of FlowType (None: every type)
    sa.Column("flow_direction", sa.String(8)),  # In | Out (None: both)
    sa.Column("ack_status", sa.String(16)),  # Pending | Ok | Error (None: Ok and Error)
    sa.Column("signing_key", sa.String(128), nullable=False),  # base64 of 32 random bytes (HMAC-SHA-256)
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
    sa.Index("ix_webhooks_partner", "partner", "created_at"),
)


# ---- the reform's directory (migration 0018; flows/store/reform_directory.py) ----------------------------

reform_directory_versions = sa.Table(
    "reform_directory_versions",
    metadata,
    sa.Column("version", sa.String(100), primary_key=True),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Index("ix_reform_versions_imported", "imported_at"),
)

reform_lines = sa.Table(
    "reform_lines",
    metadata,
    # Primary key (version, addressing_identifier): the routing look-up is one B-tree probe per candidate.
    sa.Column("version", sa.String(100), primary_key=True),
    sa.Column("addressing_identifier", sa.String(125), primary_key=True),
    sa.Column("siren", sa.String(9), nullable=False),
    sa.Column("siret", sa.String(14)),
    sa.Column("routing_identifier", sa.String(100)),
    sa.Column("suffix", sa.String(100)),
    sa.Column("platform_id", sa.String(20), nullable=False),
    sa.Column("platform_name", sa.String(200), nullable=False),
    sa.Column("platform_type", sa.String(3), nullable=False),
    sa.Column("status", sa.String(8), nullable=False),  # Enabled | Disabled | Upcoming
    sa.Column("effective_from", sa.Date),
    sa.Column("effective_to", sa.Date),
    sa.Index("ix_reform_lines_siren", "version", "siren"),
    sa.Index("ix_reform_lines_siret", "version", "siret"),
)

reform_legal_units = sa.Table(
    "reform_legal_units",
    metadata,
    sa.Column("version", sa.String(100), primary_key=True),
    sa.Column("siren", sa.String(9), primary_key=True),
    sa.Column("business_name", sa.String(150), nullable=False),
    sa.Column("entity_type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(1), nullable=False),
)

reform_facilities = sa.Table(
    "reform_facilities",
    metadata,
    sa.Column("version", sa.String(100), primary_key=True),
    sa.Column("siret", sa.String(14), primary_key=True),
    sa.Column("siren", sa.String(9), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("facility_type", sa.String(1), nullable=False),
    sa.Column("status", sa.String(1), nullable=False),
    sa.Column("address_line1", sa.String(255)),
    sa.Column("address_line2", sa.String(255)),
    sa.Column("address_line3", sa.String(255)),
    sa.Column("postal_code", sa.String(5)),
    sa.Column("subdivision", sa.String(255)),
    sa.Column("locality", sa.String(100)),
    sa.Column("country", sa.String(2)),
    sa.Index("ix_reform_facilities_siren", "version", "siren"),
)

reform_routing_codes = sa.Table(
    "reform_routing_codes",
    metadata,
    sa.Column("version", sa.String(100), primary_key=True),
    sa.Column("siret", sa.String(14), primary_key=True),
    sa.Column("routing_identifier", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("status", sa.String(1), nullable=False),
    sa.Column("identifier_type", sa.String(4), nullable=False),
    sa.Column("manages_legal_commitment", sa.Boolean, nullable=False),
)


# The dashboard's daily roll-ups (migration 0021), ``rollup_flows`` and ``rollup_rejects``, are tables of this
# metadata declared with their queries in flows/store/rollups.py.
