"""The validation pool: worker processes sized to the machine, with bounded memory.

``pool`` runs the workers and hands them chunks; ``worker`` is the worker process
(``python -m validators.pool.worker``) and its protocol; ``config`` the pool's settings and jobs.

The names are exported lazily (PEP 562): importing this package imports none of its modules, so
``python -m validators.pool.worker`` runs the worker module once, as ``__main__`` (an eager
``from validators.pool.pool import ...`` here would import it a second time first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from validators.pool.config import Job, PoolConfig
    from validators.pool.pool import ValidationPool

__all__ = ["Job", "PoolConfig", "ValidationPool"]


def __getattr__(name: str) -> Any:
    if name in ("Job", "PoolConfig"):
        from validators.pool import config

        return getattr(config, name)
    if name == "ValidationPool":
        from validators.pool.pool import ValidationPool

        return ValidationPool
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
