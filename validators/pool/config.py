"""What the validation pool and its workers exchange first: the pool's configuration and a job.

Its own module so that `validators.pool` (the parent side) and `validators.pool.worker`
(the worker side) both import it, and not each other.
"""

from __future__ import annotations

import dataclasses

from flows.domain.model import Container
from validators.document import JudgeConfig


@dataclasses.dataclass(frozen=True)
class PoolConfig:
    judge: JudgeConfig = JudgeConfig()
    workers: int | None = None  # None: one per CPU; 0: judge in this process
    chunk_size: int = 16
    seconds_per_document: float = 120.0  # time budget of a chunk = this x its documents
    worker_memory_mb: int | None = None  # data-segment cap per worker (RLIMIT_DATA)
    inline_below: int = 8  # flows with fewer documents are judged in this process


@dataclasses.dataclass(frozen=True, slots=True)
class Job:
    key: int
    data: bytes
    container: Container | None
    entry_name: str
