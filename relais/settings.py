"""Where Relais keeps its data, and its limits. One object, read from the environment.

Layout under ``home`` (default ``./var/relais``, or ``RELAIS_HOME``)::

    relais.db                       SQLite store (RELAIS_DATABASE_URL overrides)
    archive/                        content-addressed, write-once archive
    dropzones/<partner>/in/         where a partner drops files (folder channel)
    dropzones/<partner>/out/        where its return flows appear
    delivery/<siret>/<service>/     routed invoices, one folder per recipient and service
    staging/                        scratch space for in-flight copies
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from pathlib import Path

from flows.domain.circuits import Deadlines
from flows.pipeline.config import PipelineConfig
from relais.grouping import MAX_BYTES_PER_GROUP, MAX_DOCUMENTS_PER_GROUP, MAX_FLOWS_PER_GROUP, TARGET_SECONDS

DEFAULT_HOME = Path("var") / "relais"
MAX_DEADLINE_DAYS = 366  # a deadline of a billing circuit: at most a year


@dataclasses.dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    database_schema: str | None = None
    cii_xsd: Path | None = None
    ubl_xsd_dir: Path | None = None
    max_flow_bytes: int = 1024**3
    max_invoices_per_flow: int = 500
    max_xml_bytes: int = 200 * 1024 * 1024
    stable_seconds: float = 1.0
    chunk_size: int = 500
    max_flows_per_group: int = MAX_FLOWS_PER_GROUP  # at most this many flows per Airflow mapped task
    max_documents_per_group: int = MAX_DOCUMENTS_PER_GROUP  # ... and about this many documents (relais.grouping)
    max_bytes_per_group: int = MAX_BYTES_PER_GROUP  # ... and about this many bytes
    group_target_seconds: float = TARGET_SECONDS  # ... and about this much measured work (relais/workrate.py)
    intake_wait_seconds: float = 30.0  # how long the DAG's intake task waits for files when there are none
    incident_retries: int = 3  # automatic retries of a flow after an internal failure, then it is parked
    incident_backoff_seconds: float = 60.0  # wait before the first retry; doubles at each further one
    rules_dir: Path | None = None  # CEN EN 16931 validation artefacts (relais rules install)
    rules_engine: str = "native"  # business rules: "native" (validators/native) or "official" (the XSLTs on Saxon)
    workers: int | None = None  # validation worker processes; None = one per CPU, 0 = in process
    # The DAG (dags/relais_flows.py): each `process` task judges in its own process (0) or starts this many
    # validation workers; at most `dag_tasks` of them run at once (None: one per CPU), so a host runs at most
    # dag_tasks x max(1, task_workers) judges whatever the burst; after its group a task keeps taking the
    # flows that come, up to `task_linger_seconds` (0, the default: off), instead of leaving them to the
    # next DAG run. Off by default: a lingering task also takes the incident retries and runs intake beside
    # the DAG's own, so one task may report another attempt's incident (docs/architecture.md "Many workers").
    task_workers: int = 0
    dag_tasks: int | None = None
    task_linger_seconds: float = 0.0
    worker_memory_mb: int | None = None  # address-space cap of each validation worker
    seconds_per_document: float = 120.0  # validation time budget per document before an incident
    br_fr_partners: frozenset[str] = frozenset()  # partners whose flows also get the French BR-FR rules
    lease_seconds: float = 60.0  # a claimed flow or outbox row is taken over once its lease is this old
    stop_grace_seconds: float = 8.0  # SIGTERM: how long the flow in progress may take to finish (relais/run_loop.py)
    status_interval_seconds: float = 0.0  # status changes wait this long to be grouped in one return flow
    archive_url: str | None = None  # s3://BUCKET[/PREFIX]: the S3 archive (archive/s3.py); None: the folder archive/
    s3_endpoint_url: str | None = None  # an S3 store other than AWS (SeaweedFS, MinIO): its URL
    archive_retention_years: int = 10  # S3 Object Lock: each object is kept (COMPLIANCE) this many years
    return_file_mode: int = 0o644  # return flows and deliveries: readable by the partner's account (octal)
    # [circuits]: the billing circuits' deadlines, in days (flows.pipeline.deadlines; docs/billing-frameworks.md)
    circuits_validator_days: int = 15  # a validator silent this long validates tacitly
    circuits_moe_days: int = 7  # a MOE silent this long lets the piece go to the MOA
    # [reform]: Relais as a platform of the 2026 reform (docs/reform.md): its registration number (CDAR
    # ``GlobalID@schemeID=0238`` of the messages it issues) and its name
    platform_id: str = "9998"
    platform_name: str = "Relais"

    def __post_init__(self) -> None:
        for name, value in (
            ("RELAIS_CIRCUITS_VALIDATOR_DAYS", self.circuits_validator_days),
            ("RELAIS_CIRCUITS_MOE_DAYS", self.circuits_moe_days),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DEADLINE_DAYS:
                raise ValueError(f"{name} must be a whole number of days from 1 to {MAX_DEADLINE_DAYS}, not {value!r}")

    @property
    def deadlines(self) -> Deadlines:
        """The billing circuits' deadlines (``[circuits] validator_days``, ``moe_days``)."""
        return Deadlines(validator_days=self.circuits_validator_days, moe_days=self.circuits_moe_days)

    @property
    def partners_dir(self) -> Path:
        """One TOML/YAML file per partner (connectors/partners.py)."""
        return self.home / "partners"

    @property
    def keys_dir(self) -> Path:
        """Private keys taken from Airflow connections, written 0600."""
        return self.home / "keys"

    @property
    def installed_rules_dir(self) -> Path:
        """Where `relais rules install` puts the CEN artefacts for this home."""
        return self.home / "rules"

    @property
    def native_cache_dir(self) -> Path:
        """Generated code of the native rule engine, by stylesheet hash (RELAIS_NATIVE_CACHE overrides)."""
        configured = os.environ.get("RELAIS_NATIVE_CACHE")
        return Path(configured) if configured else self.home / "cache" / "native-rules"

    @property
    def archive_dir(self) -> Path:
        return self.home / "archive"

    @property
    def dropzones_dir(self) -> Path:
        return self.home / "dropzones"

    @property
    def delivery_dir(self) -> Path:
        return self.home / "delivery"

    @property
    def staging_dir(self) -> Path:
        return self.home / "staging"

    def inbox(self, partner: str) -> Path:
        return self.dropzones_dir / partner / "in"

    def outbox_dir(self, partner: str) -> Path:
        return self.dropzones_dir / partner / "out"

    @classmethod
    def from_env(cls, home: Path | str | None = None, **overrides: object) -> Settings:
        env = os.environ
        root = Path(home or env.get("RELAIS_HOME") or DEFAULT_HOME).absolute()
        values: dict[str, object] = {
            "home": root,
            "database_url": env.get("RELAIS_DATABASE_URL") or f"sqlite:///{root / 'relais.db'}",
        }
        if env.get("RELAIS_DATABASE_SCHEMA"):
            values["database_schema"] = env["RELAIS_DATABASE_SCHEMA"]
        if env.get("RELAIS_RULES_DIR"):
            values["rules_dir"] = Path(env["RELAIS_RULES_DIR"])
        elif (root / "rules").is_dir():
            values["rules_dir"] = root / "rules"
        if env.get("RELAIS_BR_FR_PARTNERS"):
            values["br_fr_partners"] = frozenset(
                p.strip() for p in env["RELAIS_BR_FR_PARTNERS"].split(",") if p.strip()
            )
        if env.get("RELAIS_RULES_ENGINE"):
            engine = env["RELAIS_RULES_ENGINE"].strip().lower()
            if engine not in ("native", "official"):
                raise ValueError(f"RELAIS_RULES_ENGINE must be native or official, not {env['RELAIS_RULES_ENGINE']!r}")
            values["rules_engine"] = engine
        if env.get("RELAIS_ARCHIVE_URL"):
            values["archive_url"] = env["RELAIS_ARCHIVE_URL"]
        if env.get("RELAIS_S3_ENDPOINT_URL"):
            values["s3_endpoint_url"] = env["RELAIS_S3_ENDPOINT_URL"]
        if env.get("RELAIS_RETURN_FILE_MODE"):
            values["return_file_mode"] = file_mode(env["RELAIS_RETURN_FILE_MODE"], "RELAIS_RETURN_FILE_MODE")
        if env.get("RELAIS_CII_XSD"):
            values["cii_xsd"] = Path(env["RELAIS_CII_XSD"])
        if env.get("RELAIS_UBL_XSD_DIR"):
            values["ubl_xsd_dir"] = Path(env["RELAIS_UBL_XSD_DIR"])
        for key, name, kind in (
            ("max_flow_bytes", "RELAIS_MAX_FLOW_BYTES", int),
            ("max_invoices_per_flow", "RELAIS_MAX_INVOICES_PER_FLOW", int),
            ("max_flows_per_group", "RELAIS_MAX_FLOWS_PER_GROUP", int),
            ("max_documents_per_group", "RELAIS_MAX_DOCUMENTS_PER_GROUP", int),
            ("max_bytes_per_group", "RELAIS_MAX_GROUP_BYTES", int),
            ("incident_retries", "RELAIS_INCIDENT_RETRIES", int),
            ("circuits_validator_days", "RELAIS_CIRCUITS_VALIDATOR_DAYS", int),
            ("circuits_moe_days", "RELAIS_CIRCUITS_MOE_DAYS", int),
            ("platform_id", "RELAIS_PLATFORM_ID", str),
            ("platform_name", "RELAIS_PLATFORM_NAME", str),
            ("archive_retention_years", "RELAIS_ARCHIVE_RETENTION_YEARS", int),
            ("workers", "RELAIS_WORKERS", int),
            ("task_workers", "RELAIS_TASK_WORKERS", int),
            ("dag_tasks", "RELAIS_DAG_TASKS", int),
            ("task_linger_seconds", "RELAIS_TASK_LINGER_SECONDS", float),
            ("worker_memory_mb", "RELAIS_WORKER_MEMORY_MB", int),
            ("incident_backoff_seconds", "RELAIS_INCIDENT_BACKOFF_SECONDS", float),
            ("intake_wait_seconds", "RELAIS_INTAKE_WAIT_SECONDS", float),
            ("stable_seconds", "RELAIS_STABLE_SECONDS", float),
            ("status_interval_seconds", "RELAIS_STATUS_INTERVAL_SECONDS", float),
            ("lease_seconds", "RELAIS_LEASE_SECONDS", float),
            ("stop_grace_seconds", "RELAIS_STOP_GRACE_SECONDS", float),
            ("group_target_seconds", "RELAIS_GROUP_TARGET_SECONDS", float),
        ):
            if env.get(name):
                try:
                    values[key] = kind(env[name])
                except ValueError:
                    what = "a whole number" if kind is int else "a number of seconds"
                    raise ValueError(f"{name} must be {what}, not {env[name]!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def pipeline_config(self) -> PipelineConfig:
        """What the pipeline needs of these settings (the core never reads the environment)."""
        return PipelineConfig(
            staging_dir=self.staging_dir,
            delivery_dir=self.delivery_dir,
            max_flow_bytes=self.max_flow_bytes,
            max_invoices_per_flow=self.max_invoices_per_flow,
            max_xml_bytes=self.max_xml_bytes,
            chunk_size=self.chunk_size,
            br_fr_partners=self.br_fr_partners,
            incident_retries=self.incident_retries,
            lease=dt.timedelta(seconds=self.lease_seconds),
            incident_backoff_seconds=self.incident_backoff_seconds,
            deadlines=self.deadlines,
        )

    def ensure_dirs(self) -> None:
        for d in (self.home, self.archive_dir, self.dropzones_dir, self.delivery_dir, self.staging_dir):
            d.mkdir(parents=True, exist_ok=True)


def file_mode(value: str, name: str) -> int:
    """Permissions given in octal (``0640``, ``640``, ``0o640``); ValueError naming `name` otherwise.

    >>> oct(file_mode("0640", "X")), oct(file_mode("600", "X"))
    ('0o640', '0o600')
    """
    text = value.strip().lower().removeprefix("0o")
    try:
        mode = int(text, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o777 or not text:
        raise ValueError(f"{name} must be octal permissions such as 0644, not {value!r}")
    return mode
