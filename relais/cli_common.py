"""Helpers shared by the command modules (kept apart from relais/cli.py to avoid import cycles)."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from relais.settings import Settings


def fail(prefix: str, message: str, code: int = 2) -> NoReturn:
    """Print `prefix: message` on stderr and exit with `code`."""
    click.echo(f"{prefix}: {message}", err=True)
    sys.exit(code)


def settings(ctx: click.Context, prefix: str) -> Settings:
    """Settings for the home given on the command line (or the environment); a bad value exits 2."""
    obj = ctx.obj or {}
    try:
        return Settings.from_env(obj.get("home"))
    except ValueError as e:  # e.g. RELAIS_MAX_FLOW_BYTES=abc
        fail(prefix, f"invalid setting in the environment: {e}")


def runtime(ctx: click.Context, prefix: str):  # noqa: ANN201 - relais.compose.Runtime, imported lazily (`--help` stays fast)
    """The runtime of the home given on the command line; a bad configuration exits 2."""
    from flows.errors import ConfigError
    from relais.compose import Runtime

    try:
        return Runtime.open(settings(ctx, prefix))
    except ConfigError as e:
        fail(prefix, str(e))
