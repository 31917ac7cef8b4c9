"""``relais outbox``: deliveries and return flows not sent yet, oldest first."""

from __future__ import annotations

import json

import click

from relais.cli.common import pass_settings
from relais.settings import Settings


@click.command(name="outbox")
@click.option("--json", "as_json", is_flag=True)
@pass_settings
def outbox(settings: Settings, as_json: bool) -> None:
    """Deliveries and return flows not sent yet (e.g. a partner's server is down), oldest first."""
    from flows.store import Store

    store = Store.open(settings.database_url, schema=settings.database_schema)
    items = store.pending_outbox()
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "flow": i.flow_id,
                        "kind": i.kind,
                        "channel": i.channel,
                        "partner": i.partner,
                        "destination": i.destination,
                        "attempts": i.attempts,
                        "last_error": i.last_error,
                        "next_attempt_at": i.next_attempt_at.isoformat() if i.next_attempt_at else None,
                    }
                    for i in items
                ],
                ensure_ascii=False,
            )
        )
        return
    if not items:
        click.echo("file d'envoi vide : tout a été envoyé (outbox empty: everything was sent)")
        return
    for i in items:
        retry = f"nouvel essai à {i.next_attempt_at:%H:%M:%S}" if i.next_attempt_at else "dû maintenant"
        click.echo(
            f"{i.flow_id or '-':<14} {i.kind:<8} essais {i.attempts:<3} {retry:<21} {i.channel} {i.partner or '-'} {i.destination}"
            + (f"\n{'':<15}dernière erreur : {i.last_error}" if i.last_error else "")
        )
