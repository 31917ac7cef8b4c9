"""structlog JSON lines; pipeline code binds ``flow_id`` (and ``invoice_id``) as context."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

_configured = False


class _Stderr:
    """Whatever sys.stderr is at write time (test runners and CLIs swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(level: str = "INFO", stream: TextIO | None = None) -> None:
    """JSON lines to `stream` (stderr by default). Idempotent."""
    global _configured
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.WriteLoggerFactory(file=stream or _Stderr()),  # type: ignore[arg-type]  # file-like
        cache_logger_on_first_use=False,
    )
    _configured = True


def get(name: str = "relais") -> structlog.typing.FilteringBoundLogger:
    """A logger; configures JSON lines on first use unless the host process already set up structlog.

    Inside an Airflow task, structlog is Airflow's (events go to the task log):
    configuring it again here would take over Airflow's own task logging.
    """
    if not _configured and not structlog.is_configured():
        configure()
    return structlog.get_logger(name)


bind = structlog.contextvars.bind_contextvars
unbind = structlog.contextvars.unbind_contextvars
bound = structlog.contextvars.bound_contextvars
