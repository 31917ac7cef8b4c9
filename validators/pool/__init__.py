"""The validation pool: worker processes sized to the machine, with bounded memory.

``pool`` runs the workers and hands them chunks; ``worker`` is the worker process
(``python -m validators.pool.worker``) and its protocol; ``config`` the pool's settings and jobs.
"""

from validators.pool.config import Job, PoolConfig
from validators.pool.pool import ValidationPool

__all__ = ["Job", "PoolConfig", "ValidationPool"]
