"""The API server's settings that are not the pipeline's (`relais.settings`): read from the environment.

=================================  =======  ==========================================================
``RELAIS_API_AUTH_FAILURES``       20       failed bearer tokens from one client address within the
                                            window before its requests are answered 429 (0: no limit)
``RELAIS_API_AUTH_WINDOW_SECONDS`` 300      that window, in seconds (sliding)
``RELAIS_API_DOCS``                off      ``1``: serve ``/docs`` (Swagger UI) from an installed package
                                            that ships its assets, never from a CDN (`relais.api.docs`)
``RELAIS_API_PROCESS``             off      ``1``: process each uploaded flow in the server, right after
                                            its upload (`relais.api.worker`; `relais api serve --process`)
=================================  =======  ==========================================================

>>> ApiConfig.from_env({"RELAIS_API_AUTH_FAILURES": "5", "RELAIS_API_DOCS": "yes"})
ApiConfig(auth_failures=5, auth_window_seconds=300.0, docs=True, process=False)
>>> ApiConfig.from_env({"RELAIS_API_PROCESS": "1"}).process
True
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

AUTH_FAILURES = 20
AUTH_WINDOW_SECONDS = 300.0


@dataclasses.dataclass(frozen=True, slots=True)
class ApiConfig:
    auth_failures: int = AUTH_FAILURES
    auth_window_seconds: float = AUTH_WINDOW_SECONDS
    docs: bool = False
    process: bool = False  # uploaded flows processed by the server itself (relais/api/worker.py)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ApiConfig:
        env = os.environ if env is None else env
        return cls(
            auth_failures=max(0, int(env.get("RELAIS_API_AUTH_FAILURES") or AUTH_FAILURES)),
            auth_window_seconds=float(env.get("RELAIS_API_AUTH_WINDOW_SECONDS") or AUTH_WINDOW_SECONDS),
            docs=(env.get("RELAIS_API_DOCS") or "").strip().lower() in ("1", "true", "yes", "on"),
            process=(env.get("RELAIS_API_PROCESS") or "").strip().lower() in ("1", "true", "yes", "on"),
        )
