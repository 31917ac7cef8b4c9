"""`relais waiting`: the files waiting in the drop zones and why (connectors/folder/waiting.py)."""

from __future__ import annotations

import json

import click

from relais.cli.common import pass_settings
from relais.settings import Settings


@click.command(name="waiting")
@click.option("--partner", help="Only this partner's drop zone.")
@click.option(
    "--limit", default=200, show_default=True, type=click.IntRange(min=0, max=100_000), help="Files listed at most."
)
@click.option("--json", "as_json", is_flag=True, help='Print {"total": N, "counts": [...], "files": [...]}.')
@pass_settings
def waiting(settings: Settings, partner: str | None, limit: int, as_json: bool) -> None:
    """Les fichiers en attente dans les zones de dépôt, et pourquoi ils attendent (suspendu, envoi
    incomplet, fichier partenaire invalide, pas encore stable...). Files waiting in the drop zones, and why.

    Oldest first, at most --limit of them; the counts are exact. Exit 0.
    """
    from connectors.folder import waiting as w
    from flows.store import Store
    from relais import runner

    store = Store.open(settings.database_url, schema=settings.database_schema)
    try:
        found = runner.waiting_files(settings, store, partner=partner, limit=limit)
    finally:
        store.close()
    if as_json:
        counts = [
            {"partner": p, "reason": r.value, "label": w.label(r), "files": n}
            for (p, r), n in sorted(found.counts.items())
        ]
        files = [w.as_json(f) for f in found.files]
        click.echo(json.dumps({"total": found.total, "counts": counts, "files": files}, ensure_ascii=False))
        return
    where = f" (partenaire {partner})" if partner else ""
    if not found.total:
        click.echo(f"Aucun fichier en attente dans les zones de dépôt{where}.")
        return
    stuck = f", dont {found.stuck} bloqué(s) jusqu'à une action" if found.stuck else ""
    click.echo(f"{found.total} fichier(s) en attente dans les zones de dépôt{where}{stuck} :")
    for reason, n in found.by_reason().items():
        click.echo(f"  {w.label(reason)} : {n}")
    click.echo("")
    for f in found.files:
        name = f.name if f.name is not None else "(envoi SFTP en cours)"
        click.echo(f"{f.partner}  {name}  {w.size_text(f.size)}  depuis {w.duration(f.age_seconds)}")
        click.echo(f"    {w.explain(f)}")
    if found.truncated:
        click.echo(
            f"… et {found.total - len(found.files)} autre(s) : --limit pour en voir plus, --partner pour filtrer."
        )
