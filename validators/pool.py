"""A pool of validation worker processes sized to the machine, with bounded memory.

Documents go to the workers in small chunks; at most a few chunks per worker
are in flight, so memory stays flat whatever the batch size, and verdicts come
back in document order. Each worker keeps one `DocumentJudge` (schemas and
stylesheets compiled once per process).

Fail closed: a worker that dies (out of memory, killed), a chunk that takes
longer than its time budget, or any error raised while judging becomes an
`Incident` for the whole flow; the pool is then rebuilt for the next flow.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import dataclasses
import multiprocessing
import os
from collections.abc import Iterable, Iterator

from flows.errors import Incident
from flows.model import Container
from validators.document import DocumentJudge, JudgeConfig, Verdict

_judge: DocumentJudge | None = None


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


def _init_worker(config: PoolConfig) -> None:
    global _judge
    if config.worker_memory_mb:
        import resource

        # RLIMIT_DATA, not RLIMIT_AS: Saxon reserves tens of GB of address space it never uses.
        limit = config.worker_memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    _judge = DocumentJudge(config.judge)


def _judge_chunk(jobs: list[Job], keep_going: bool, br_fr: bool) -> list[tuple[int, Verdict]]:
    assert _judge is not None, "worker not initialised"
    return [(j.key, _judge.judge(j.data, j.container, entry_name=j.entry_name,
                                 keep_going=keep_going, br_fr=br_fr)) for j in jobs]


class ValidationPool:
    def __init__(self, config: PoolConfig = PoolConfig()) -> None:
        self.config = config
        self.workers = (os.cpu_count() or 1) if config.workers is None else config.workers
        self._executor: cf.ProcessPoolExecutor | None = None
        self._local: DocumentJudge | None = None

    @property
    def local(self) -> DocumentJudge:
        """The in-process judge (small flows, `relais validate`)."""
        if self._local is None:
            self._local = DocumentJudge(self.config.judge)
        return self._local

    def versions(self) -> dict[str, str]:
        return self.local.versions()

    def _pool(self) -> cf.ProcessPoolExecutor:
        if self._executor is None:
            self._executor = cf.ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.config,),
            )
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            _kill(self._executor)
            self._executor = None

    def judge_all(self, jobs: Iterable[Job], *, expected: int, keep_going: bool = False,
                  br_fr: bool = False) -> Iterator[tuple[Job, Verdict]]:
        """Verdicts of `jobs`, in order. `expected` (the number of jobs) picks inline or pooled."""
        if self.workers == 0 or expected < self.config.inline_below:
            for job in jobs:
                yield job, self.local.judge(job.data, job.container, entry_name=job.entry_name,
                                            keep_going=keep_going, br_fr=br_fr)
            return
        yield from self._pooled(jobs, keep_going, br_fr)

    def _pooled(self, jobs: Iterable[Job], keep_going: bool, br_fr: bool) -> Iterator[tuple[Job, Verdict]]:
        pool = self._pool()
        window = 2 * self.workers
        pending: collections.deque[tuple[list[Job], cf.Future]] = collections.deque()
        chunk: list[Job] = []

        def submit(c: list[Job]) -> None:
            pending.append((c, pool.submit(_judge_chunk, c, keep_going, br_fr)))

        def collect() -> Iterator[tuple[Job, Verdict]]:
            c, future = pending.popleft()
            budget = self.config.seconds_per_document * len(c)
            try:
                results = future.result(timeout=budget)
            except cf.TimeoutError as e:
                self.close()
                raise Incident(f"validation of {len(c)} documents took more than {budget:.0f} s") from e
            except cf.process.BrokenProcessPool as e:
                self.close()
                raise Incident("a validation worker died (out of memory or killed)") from e
            except Incident:
                raise
            except MemoryError as e:
                raise Incident("a validation worker ran out of memory") from e
            by_key = dict(results)
            for job in c:
                yield job, by_key[job.key]

        try:
            for job in jobs:
                chunk.append(job)
                if len(chunk) >= self.config.chunk_size:
                    submit(chunk)
                    chunk = []
                    while len(pending) >= window:
                        yield from collect()
            if chunk:
                submit(chunk)
            while pending:
                yield from collect()
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise


def _kill(executor: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now, even with a stuck worker."""
    processes = list(getattr(executor, "_processes", {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        if p.is_alive():
            p.kill()
    for p in processes:
        p.join(timeout=5)
