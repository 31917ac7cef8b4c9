"""The pipeline's own settings: limits, folders and the incident policy.

`relais.settings.Settings` (read from the environment) builds one with
``Settings.pipeline_config()``; the core never reads the environment itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from flows.domain.circuits import Deadlines


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
    staging_dir: Path  # scratch space for return flows being written
    delivery_dir: Path  # routed invoices, one folder per recipient and service
    max_flow_bytes: int = 1024**3
    max_invoices_per_flow: int = 500
    max_xml_bytes: int = 200 * 1024 * 1024
    chunk_size: int = 500  # invoices saved per transaction
    br_fr_partners: frozenset[str] = frozenset()  # partners whose flows also get the French BR-FR rules
    incident_retries: int = 3  # automatic retries of a flow after an internal failure, then it is parked
    incident_backoff_seconds: float = 60.0  # wait before the first retry; doubles at each further one
    lease: dt.timedelta = dt.timedelta(seconds=60)  # a claim holds this long unless renewed (flows.domain.lease)
    deadlines: Deadlines = Deadlines()  # how long the actors of a billing circuit have (flows.domain.circuits)

    def incident_retry_delay(self, incidents: int) -> float | None:
        """Seconds before the next automatic try of a flow that failed `incidents` times; None: park it.

        >>> c = PipelineConfig(staging_dir=Path("s"), delivery_dir=Path("d"))
        >>> [c.incident_retry_delay(n) for n in (1, 2, 3, 4)]
        [60.0, 120.0, 240.0, None]
        """
        if incidents > self.incident_retries:
            return None
        return self.incident_backoff_seconds * 2 ** (incidents - 1)
