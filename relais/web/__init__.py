"""The "Suivi des flux" web application: `relais web serve` (relais/cli/web.py).

Server-rendered pages (Jinja2) over the store the pipeline writes; actions go through the same core
functions as the CLI. `create_app(rt)` builds it; docs/web.md describes it.
"""

from relais.web.app import create_app

__all__ = ["create_app"]
