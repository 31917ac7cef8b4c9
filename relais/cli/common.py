"""What the command modules share: failing with a message, the settings and runtime a command is given
(`pass_settings`, `pass_runtime`), the host/port/TLS options of the servers (`serve_options`), and a
French `Choice`. Kept apart from relais/cli/root.py, which imports every command module.

One behaviour for a home that cannot be used: an invalid setting in the environment, an XSD named by
RELAIS_UBL_XSD_DIR / RELAIS_CII_XSD that is missing, or a store schema that is not usable print
``relais <command>: <message in French> (<English>)`` on stderr and exit 2, whichever command met it.
"""

from __future__ import annotations

import datetime as dt
import functools
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, NoReturn, ParamSpec, TypeVar

import click

from relais.settings import Settings

if TYPE_CHECKING:  # imported lazily at run time: `relais --help` stays fast
    from cryptography.x509 import Certificate

    from connectors.partners import Partner, PartnerSet
    from relais.compose import Runtime

P = ParamSpec("P")
R = TypeVar("R")

USAGE = 2  # exit code of a command that cannot run as asked (bad option, unusable configuration)


def fail(prefix: str, message: str, code: int = USAGE) -> NoReturn:
    """Print `prefix: message` on stderr and exit with `code`."""
    click.echo(f"{prefix}: {message}", err=True)
    sys.exit(code)


def command_prefix(ctx: click.Context) -> str:
    """``relais flows reprocess``: the command as typed, whatever name the program was started under."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(["relais", *reversed(names)])


def load_settings(ctx: click.Context, home: Path | None = None) -> Settings:
    """Settings for `home`, else the home given on the command line (or the environment); an invalid
    setting exits 2."""
    obj = ctx.obj or {}
    try:
        return Settings.from_env(home or obj.get("home"))
    except ValueError as e:  # e.g. RELAIS_MAX_FLOW_BYTES=abc
        fail(command_prefix(ctx), f"réglage invalide dans l'environnement : {e} (invalid setting in the environment)")


def unusable(error: Exception) -> NoReturn:
    """Exit 2 for a configuration the current command cannot use: a missing XSD (`FileNotFoundError`), a
    bad configuration file or store schema (`ConfigError`)."""
    ctx = click.get_current_context()
    fail(command_prefix(ctx), f"configuration inutilisable : {error} (unusable configuration)")


def configuration_errors() -> tuple[type[Exception], ...]:
    """The errors `unusable` reports: what opening a runtime, a store or a judge raises for a bad setup."""
    from flows.domain.errors import ConfigError

    return (FileNotFoundError, ConfigError)


def pass_settings(command: Callable[Concatenate[Settings, P], R]) -> Callable[P, R]:
    """Give the command the settings of the home given on the command line, as its first argument."""

    @functools.wraps(command)
    def with_settings(*args: P.args, **kwargs: P.kwargs) -> R:
        return command(load_settings(click.get_current_context()), *args, **kwargs)

    return with_settings


def pass_runtime(command: Callable[Concatenate[Runtime, P], R]) -> Callable[P, R]:
    """Give the command the runtime (store, archive, validation pool, partners) of the home given on the
    command line, as its first argument (`runtime`)."""

    @functools.wraps(command)
    def with_runtime(*args: P.args, **kwargs: P.kwargs) -> R:
        return command(runtime(click.get_current_context()), *args, **kwargs)

    return with_runtime


def runtime(ctx: click.Context, settings: Settings | None = None) -> Runtime:
    """The runtime of the home given on the command line (or of `settings`), closed when the command
    ends (a command may close it earlier); an unusable configuration exits 2 (`unusable`)."""
    from relais.compose import Runtime

    settings = settings or load_settings(ctx)
    try:
        rt = Runtime.open(settings)
    except configuration_errors() as e:
        unusable(e)
    ctx.call_on_close(rt.close)
    return rt


def serve_options(
    port: int, port_help: str = "Port to listen on (0: any free port).", tls: bool = False
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``--host`` and ``--port`` (default `port`) of a server command; with `tls`, ``--certfile`` and
    ``--keyfile`` too (a key without a certificate is refused, exit 2)."""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        if tls:
            command = _tls_pair(command)
            command = click.option(
                "--keyfile",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="TLS private key (PEM), with --certfile.",
            )(command)
            command = click.option(
                "--certfile",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="TLS certificate chain (PEM): serve HTTPS.",
            )(command)
        command = click.option(
            "--port", default=port, show_default=True, type=click.IntRange(0, 65535), help=port_help
        )(command)
        return click.option(
            "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all)."
        )(command)

    return decorate


def _tls_pair(command: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(command)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        if kwargs.get("keyfile") and not kwargs.get("certfile"):
            raise click.BadParameter(
                "--keyfile va avec --certfile (--keyfile needs --certfile)", param_hint="--keyfile"
            )
        return command(*args, **kwargs)

    return checked


def serve_until_stopped(serve: Callable[[], object], stop: Callable[[], object]) -> NoReturn:
    """Run a server (`serve` blocks) until Ctrl-C (exit 130) or SIGTERM (systemd, docker stop: the same
    clean stop, exit 0), then `stop` it, say so on stderr and exit."""

    def terminate(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, terminate)
    code = 0
    try:
        serve()
    except KeyboardInterrupt:
        code = 130
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 0
    finally:
        stop()
        click.echo("arrêté (stopped)", err=True)
    sys.exit(code)


class InvalidChoice(click.BadParameter):
    """A value outside an option's closed set, told in French with every valid value (exit 2)."""

    def format_message(self) -> str:
        return self.message

    def show(self, file: Any = None) -> None:
        ctx = self.ctx
        where = ctx.command_path if ctx is not None else "relais"
        click.echo(f"{where} : {self.message}\n(aide : {where} --help)", err=True)


class Choice(click.Choice):
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


# ---- how the partner commands show partners ----------------------------------------------------


def load_partners(settings: Settings) -> PartnerSet:
    """The partners (connectors.partners.PartnerSet): the good ones, and apart the bad files' problems
    (a bad file does not stop the others; each command says how it shows them)."""
    from connectors import partners as partners_config

    return partners_config.load(settings.partners_dir)


def echo_bad(found: PartnerSet, indent: str = "  ", err: bool = False) -> None:
    """Each bad partner (or unreadable file) with every problem, marked BAD."""
    for key in sorted(found.problems):
        line = (
            f"{indent}BAD {key} : fichier de partenaire non chargé : ni relevé, ni servi, ni lu jusqu'à sa correction"
        )
        click.echo(click.style(line, fg="red"), err=err)
        for problem in found.problems[key]:
            click.echo(click.style(f"{indent}  ! {problem}", fg="yellow"), err=err)


def cert_line(cert: Certificate, now: dt.datetime) -> tuple[str, bool]:
    """'until 2027-01-31 (432 days)' and whether it needs attention (expired or within 30 days)."""
    from connectors.as2.station import EXPIRY_WARNING_DAYS

    end = cert.not_valid_after_utc
    days = (end - now).days
    if end <= now:
        return f"EXPIRED on {end:%Y-%m-%d}", True
    if cert.not_valid_before_utc > now:
        return f"not valid before {cert.not_valid_before_utc:%Y-%m-%d}", True
    return f"until {end:%Y-%m-%d} ({days} days)", days < EXPIRY_WARNING_DAYS


def as2_rows(partners: PartnerSet) -> list[dict[str, Any]]:
    """One row per AS2 partner: ids, endpoint, certificates with their expiry and problems."""
    from connectors.as2 import certs
    from connectors.as2.station import certificate_warnings, load_party
    from flows.domain.errors import ConfigError

    now = dt.datetime.now(dt.UTC)
    rows = []
    for p in sorted(partners.values(), key=lambda p: p.id):
        if p.as2 is None:
            continue
        cfg = p.as2
        row: dict[str, Any] = {
            "partner": p.id,
            "as2_id": cfg.as2_id,
            "our_as2_id": cfg.our_as2_id,
            "url": cfg.url,
            "mdn": cfg.mdn,
            "sign": cfg.sign,
            "encrypt": cfg.encrypt,
            "compress": cfg.compress,
            "certificates": {},
            "problems": [],
        }
        for whose, path in (("partner", cfg.partner_cert), ("ours", cfg.our_cert)):
            try:
                cert = certs.load_cert(path)
            except ConfigError as e:
                row["problems"].append(str(e))
                continue
            text, attention = cert_line(cert, now)
            row["certificates"][whose] = {
                "path": str(path),
                "subject": cert.subject.rfc4514_string(),
                "not_after": cert.not_valid_after_utc.isoformat(),
                "validity": text,
                "attention": attention,
            }
        try:
            row["problems"].extend(certificate_warnings(load_party(p)))
        except ConfigError as e:
            row["problems"].append(str(e))
        rows.append(row)
    return rows


def print_as2_row(row: dict[str, Any], indent: str = "  ") -> None:
    for whose, c in row["certificates"].items():
        line = f"{indent}certificat {whose} {c['subject']} : {c['validity']}"
        click.echo(click.style(line, fg="red") if c["attention"] else line)
    for problem in row["problems"]:
        click.echo(click.style(f"{indent}! {problem}", fg="yellow"))


def return_target(settings: Settings, partner: Partner) -> str:
    """Where this partner's return flows go: asked of the registered channels (relais/compose.py)."""
    from relais.compose import channels

    address = channels(settings, lambda: {partner.id: partner}).return_address(partner.id, "_")
    folder = address.destination.rpartition("/")[0]
    if address.channel == "as2" and partner.as2 is not None:
        return f"AS2 {partner.as2.url}"
    if address.channel == "sftp":
        return f"SFTP {folder or '.'}"
    return folder
