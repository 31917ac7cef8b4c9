"""Helpers shared by the command modules (kept apart from relais/cli/root.py to avoid import cycles)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, NoReturn

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
        fail(prefix, f"réglage invalide dans l'environnement : {e} (invalid setting in the environment)")


def runtime(ctx: click.Context, prefix: str):  # noqa: ANN201 - relais.compose.Runtime, imported lazily (`--help` stays fast)
    """The runtime of the home given on the command line; a bad configuration exits 2."""
    from flows.domain.errors import ConfigError
    from relais.compose import Runtime

    try:
        return Runtime.open(settings(ctx, prefix))
    except ConfigError as e:
        fail(prefix, str(e))


class InvalidChoice(click.BadParameter):
    """A value outside an option's closed set, told in French with every valid value (exit 2)."""

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        ctx = self.ctx
        where = ctx.command_path if ctx is not None else "relais"
        click.echo(f"{where} : {self.message}\n(aide : {where} --help)", err=True)


class Choice(click.Choice):  # type: ignore[type-arg]
    """`click.Choice` whose refusal is French and lists the valid values (with their meaning when given)."""

    def __init__(self, choices: Sequence[str], case_sensitive: bool = True, meanings: dict[str, str] | None = None):
        super().__init__(choices, case_sensitive=case_sensitive)
        self.meanings = meanings or {}

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            name = (param.opts[0] if param is not None and param.opts else None) or "la valeur"
            valid = ", ".join(f"{c} ({self.meanings[c]})" if c in self.meanings else str(c) for c in self.choices)
            raise InvalidChoice(
                f"valeur invalide pour {name} : « {value} » ; valeurs possibles : {valid}", ctx=ctx, param=param
            ) from None
