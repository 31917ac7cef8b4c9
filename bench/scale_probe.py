"""`relais ...` with timers on the costs bench/scale.py breaks down: the command runs as usual, and at its
exit one JSON file (RELAIS_BENCH_PROBE/<pid>.json) says how often, and for how long, it did each of:

- ``sql``: SQL statements sent (every cursor execute: one round trip each), all engines;
- ``claim``: flows claimed (`Store.claim_flow`, its statements included);
- ``archive_put`` / ``archive_put_many`` / ``archive_open`` / ``archive_exists``: archive calls, any backend;
- ``s3_request``: HTTP requests made by boto3 (each a round trip to S3);
- ``dispatch``: sending closed flows' deliveries and return flows (`dispatch_flow(s)`);
- ``wall``: the whole command.

The timers overlap (a claim's statements are in ``sql`` too; a put's requests in ``s3_request``): they say
where the time goes, not a partition of it.

    RELAIS_BENCH_PROBE=/tmp/probe python bench/scale_probe.py run -q
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_lock = threading.Lock()
_stats: dict[str, list[float]] = {}  # name -> [count, seconds]


def _add(name: str, seconds: float) -> None:
    with _lock:
        s = _stats.setdefault(name, [0, 0.0])
        s[0] += 1
        s[1] += seconds


def _timed(owner: Any, attr: str, name: str) -> None:
    original: Callable[..., Any] = getattr(owner, attr)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _add(name, time.perf_counter() - t0)

    setattr(owner, attr, wrapper)


def install() -> None:
    import sqlalchemy as sa
    from sqlalchemy import event

    from archive.base import Archive
    from archive.local import LocalArchive
    from flows.pipeline import dispatch
    from flows.store import Store

    started: dict[int, float] = {}

    @event.listens_for(sa.engine.Engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: bool) -> None:
        started[id(cursor)] = time.perf_counter()

    @event.listens_for(sa.engine.Engine, "after_cursor_execute")
    def _after(conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: bool) -> None:
        t0 = started.pop(id(cursor), None)
        if t0 is not None:
            _add("sql", time.perf_counter() - t0)

    _timed(Store, "claim_flow", "claim")
    for cls in (Archive, LocalArchive):
        for attr, name in (("put_stream", "archive_put"), ("put_many", "archive_put_many"), ("open", "archive_open")):
            if attr in vars(cls):
                _timed(cls, attr, name)
    try:
        from archive.s3 import S3Archive
    except ImportError:
        S3Archive = None
    if S3Archive is not None:
        for attr, name in (
            ("put_stream", "archive_put"),
            ("put_many", "archive_put_many"),
            ("open", "archive_open"),
            ("exists", "archive_exists"),
        ):
            if attr in vars(S3Archive):
                _timed(S3Archive, attr, name)
        import botocore.endpoint

        _timed(botocore.endpoint.Endpoint, "_send", "s3_request")
    _timed(dispatch, "dispatch_flow", "dispatch")
    _timed(dispatch, "dispatch_flows", "dispatch")


def _write(t0: float) -> None:
    _add("wall", time.perf_counter() - t0)
    folder = Path(os.environ["RELAIS_BENCH_PROBE"])
    folder.mkdir(parents=True, exist_ok=True)
    with _lock:
        data = {k: {"count": int(v[0]), "seconds": round(v[1], 3)} for k, v in _stats.items()}
    (folder / f"{os.getpid()}.json").write_text(json.dumps(data))


def main() -> None:
    t0 = time.perf_counter()
    if os.environ.get("RELAIS_BENCH_PROBE"):
        install()
        atexit.register(_write, t0)
    from relais.cli.root import main as relais

    relais()


if __name__ == "__main__":
    main()
