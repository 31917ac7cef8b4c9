"""Measured work: how many seconds processing a document has taken lately, to size the next groups.

`relais.runner.process_flows` notes, after each group, its wall time and its documents (each flow
counts its invoices, at least one: a one-invoice file costs its per-flow overhead too). The rate is
a moving average (weight `WEIGHT` to the newest group, by its documents) kept in
``$RELAIS_HOME/workrate.json`` (written atomically; several Airflow tasks may write it, the last one
wins: each write is a whole, recent measurement). `relais.runner.pending_groups` divides the target
duration of a task (`Settings.group_target_seconds`) by it to size the groups the DAG maps over.
Until something was measured, `DEFAULT_SECONDS_PER_DOCUMENT` is used.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from relais import log

if TYPE_CHECKING:
    from flows.domain.model import Flow
    from relais.compose import Runtime

DEFAULT_SECONDS_PER_DOCUMENT = 0.05
WEIGHT = 0.3  # share of the newest group in the average, for a group of `FULL_WEIGHT_DOCUMENTS` or more
FULL_WEIGHT_DOCUMENTS = 200
FILE = "workrate.json"
_log = log.get("relais.workrate")


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    """Seconds per document (`measured`: how many documents the average has seen)."""

    seconds_per_document: float = DEFAULT_SECONDS_PER_DOCUMENT
    measured: int = 0

    def after(self, seconds: float, documents: int) -> Rate:
        """The average once a group of `documents` took `seconds`.

        >>> r = Rate().after(10.0, 1000)
        >>> round(r.seconds_per_document, 4), r.measured
        (0.01, 1000)
        >>> round(r.after(20.0, 1000).seconds_per_document, 4)  # newest group weighs 0.3
        0.013
        >>> Rate(0.01, 1000).after(5.0, 0).seconds_per_document  # nothing measured
        0.01
        """
        if documents <= 0 or seconds <= 0:
            return self
        newest = seconds / documents
        if not self.measured:
            return Rate(newest, documents)
        weight = WEIGHT * min(1.0, documents / FULL_WEIGHT_DOCUMENTS)
        return Rate((1 - weight) * self.seconds_per_document + weight * newest, self.measured + documents)


def _path(rt: Runtime) -> Path:
    return rt.settings.home / FILE


def current(rt: Runtime) -> Rate:
    """The measured rate of this home, or the default when none was measured (or it is unreadable)."""
    try:
        data = json.loads(_path(rt).read_text())
        rate = Rate(float(data["seconds_per_document"]), int(data["measured"]))
    except (OSError, ValueError, KeyError, TypeError):
        return Rate()
    return rate if rate.seconds_per_document > 0 else Rate()


def note(rt: Runtime, flows: Sequence[Flow], seconds: float) -> Rate:
    """Fold a processed group into the rate (`flows` as they ended, `seconds` of wall time) and keep it."""
    documents = sum(max(1, f.invoice_count) for f in flows)
    before = current(rt)
    rate = before.after(seconds, documents)
    if rate is before:
        return rate
    path = _path(rt)
    tmp = path.with_name(f".{FILE}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(dataclasses.asdict(rate)))
        os.replace(tmp, path)
    except OSError as e:  # a read-only home: groups are sized with the default rate
        _log.warning("workrate.not_saved", error=f"{type(e).__name__}: {e}")
        tmp.unlink(missing_ok=True)
    return rate
