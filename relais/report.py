"""Readable (and JSON) views of flows for the CLI: the readable ones in French, the JSON unchanged."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence

import click

from flows.domain.history import HistoryEntry
from flows.domain.model import Flow, FlowStatus
from flows.store import As2Message, Store


def in_french(code: str, stored: str) -> str:
    """A finding's message for the terminal: the French message of a Relais rule (the stored one is English),
    with the stored detail after it (the XSD validator's own words kept); an official rule's message
    (EN 16931, CIUS) verbatim, as stored."""
    from flows.domain.rule import REGISTRY, Category
    from flows.returns.report import detail_fr
    from validators.rules import all_rules

    all_rules()  # every rule module imported: REGISTRY complete
    rule = REGISTRY.get(code)
    if rule is None or rule.category is Category.EN16931:
        return stored
    detail = stored[len(rule.message_en) :].removeprefix(":").strip() if stored.startswith(rule.message_en) else ""
    return rule.message_fr + (f" : {detail_fr(detail)}" if detail else "")  # a SIRET, a name, a number...


def as2_json(m: As2Message) -> dict:
    """One AS2 message as `relais flows ID --json` and `relais as2 messages --json` show it."""
    return {
        "direction": m.direction,
        "message_id": m.message_id,
        "partner": m.partner,
        "as2_from": m.as2_from,
        "as2_to": m.as2_to,
        "flow_id": m.flow_id,
        "mic": m.mic,
        "mic_digest": m.mic_digest,
        "mdn_mode": m.mdn_mode,
        "mdn_status": m.mdn_status,
        "detail": m.detail,
        "received_at": m.received_at.isoformat() if m.received_at else None,
    }


def history_line(h: HistoryEntry) -> str:
    """One status change, as `relais flows ID` and `relais invoices ID` print it."""
    came = f"{h.previous.code} -> " if h.previous is not None else "enregistrée "
    return f"{h.at:%Y-%m-%d %H:%M:%S} {came}{h.status.code} {h.status.label} par {h.actor} ({h.source})" + (
        f": {h.reason}" if h.reason else ""
    )


def print_invoice(store: Store, invoice_id: str, as_json: bool = False) -> bool:
    """One invoice: its facts, current status, findings and whole status history. False: no such invoice."""
    inv = store.get_invoice(invoice_id)
    if inv is None:
        return False
    history = store.invoice_history(invoice_id)
    errors = next((i.errors for i in store.iter_invoices(inv.flow_id) if i.id == invoice_id), [])
    if as_json:
        facts = {
            "id": inv.id,
            "flow": inv.flow_id,
            "position": inv.position,
            "entry": inv.entry_name,
            "number": inv.number,
            "issue_date": inv.issue_date.isoformat() if inv.issue_date else None,
            "supplier_id": inv.supplier_id,
            "buyer_siret": inv.buyer_siret,
            "service_code": inv.service_code,
            "status": {"code": inv.status.code, "label": inv.status.label},
            "delivered_to": inv.delivered_to,
            "errors": [e.as_json() for e in errors],
            "history": [h.as_json() for h in history],
        }
        click.echo(json.dumps(facts, ensure_ascii=False))
        return True
    click.echo(
        f"{inv.id}  {inv.status.code} {inv.status.label}  numéro {inv.number or '?'}  fournisseur {inv.supplier_id or '?'}"
        f"  acheteur {inv.buyer_siret or '?'} service {inv.service_code or '-'}"
    )
    click.echo(
        f"  flux {inv.flow_id} #{inv.position} {inv.entry_name}"
        + (f"  remise à {inv.delivered_to}" if inv.delivered_to else "")
    )
    for e in errors:
        click.echo(f"  [{e.flag}] {e.rule} en {e.location} : {in_french(e.rule, e.message)}")
    for h in history:
        click.echo("  " + history_line(h))
    return True


def _flow_json(f: Flow) -> dict:
    """A flow as JSON values: dates in ISO 8601, statuses and codes as strings, rule sets as an object."""
    d = dataclasses.asdict(f)
    for k, v in d.items():
        if hasattr(v, "isoformat"):
            d[k] = v.isoformat()
        elif v is not None and not isinstance(v, (bool, int, float, str, dict, list)):
            d[k] = str(v)
    d["parked"] = f.parked
    return d


def print_flows(flows: Sequence[Flow], as_json: bool = False, next_cursor: str | None = None) -> None:
    if as_json:
        click.echo(
            json.dumps({"flows": [_flow_json(f) for f in flows], "next_cursor": next_cursor}, ensure_ascii=False)
        )
        return
    if not flows:
        click.echo("aucun flux")
        return
    click.echo(
        f"{'flux':<14} {'partenaire':<14} {'reçu le':<17} {'code flux':<22} {'statut':<22} {'fact':>5} {'rej':>5}  fichier"
    )
    for f in flows:
        status = click.style(f"{f.status:<22}", fg=f.status.info.fg)  # colours: flows.domain.lifecycle
        if f.status is FlowStatus.IN_INCIDENTE:  # parked for ops, or retried automatically
            status = click.style(f"{f.status + (' à traiter' if f.parked else ' réessai'):<22}", fg=f.status.info.fg)
        click.echo(
            f"{f.id:<14} {f.partner[:14]:<14} {f.received_at:%Y-%m-%d %H:%M:%S} {str(f.flow_code or '-'):<22} "
            f"{status} {f.invoice_count:>5} {f.rejected_count:>5}  {f.original_name}"
        )


def print_flow(store: Store, flow: Flow, as_json: bool = False) -> None:
    """One flow with its invoices, errors, outbox and AS2 messages (`relais flows ID`), or its JSON."""
    if as_json:
        click.echo(json.dumps(flow_detail_json(store, flow), ensure_ascii=False))
    else:
        _print_flow_text(store, flow)


def flow_detail_json(store: Store, flow: Flow) -> dict[str, object]:
    """What `relais flows ID --json` prints."""
    history = store.history_of_flow(flow.id)
    return {
        "flow": _flow_json(flow),
        "errors": [e.as_json() for e in store.flow_errors(flow.id)],
        "invoices": [
            {
                "id": i.id,
                "position": i.position,
                "entry": i.entry_name,
                "number": i.number,
                "syntax": str(i.syntax) if i.syntax else None,
                "status": str(i.status),
                "buyer_siret": i.buyer_siret,
                "service_code": i.service_code,
                "delivered_to": i.delivered_to,
                "errors": [e.as_json() for e in i.errors],
                "history": [h.as_json() for h in history.get(i.id, [])],
            }
            for i in store.iter_invoices(flow.id)
        ],
        "outbox": [
            {
                "kind": o.kind,
                "channel": o.channel,
                "partner": o.partner,
                "destination": o.destination,
                "status": o.status,
                "attempts": o.attempts,
                "last_error": o.last_error,
            }
            for o in store.outbox_for_flow(flow.id)
        ],
        "as2": [as2_json(m) for m in store.as2_for_flow(flow.id)],
    }


def _print_flow_text(store: Store, flow: Flow) -> None:
    print_flows([flow])
    errors = store.flow_errors(flow.id)
    outbox = store.outbox_for_flow(flow.id)
    as2 = store.as2_for_flow(flow.id)
    history = store.history_of_flow(flow.id)
    click.echo(
        f"  sha256 {flow.sha256}  taille {flow.size}  canal {flow.channel}"
        f"  annuaire {flow.directory_version or '-'}"
        + (f"  doublon de {flow.duplicate_of}" if flow.duplicate_of else "")
        + (f"  profil {flow.profile}" if flow.profile else "")
        + ("  QUALIFICATION (rien n'est transmis aux destinataires)" if flow.qualification else "")
    )
    if flow.status is FlowStatus.IN_INCIDENTE:
        click.echo(
            f"  incident {flow.incidents} fois : "
            + (
                f"en attente de l'équipe d'exploitation (relais flows reprocess {flow.id})"
                if flow.parked
                else f"réessayé automatiquement le {flow.retry_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        )
    if flow.rulesets:
        click.echo(
            "  jeux de règles : "
            + ", ".join(f"{k} {v}" for k, v in sorted(flow.rulesets.items()) if not k.endswith("-source"))
        )
    for e in errors:
        click.echo(f"  erreur du flux [{e.flag}] {e.rule} en {e.location} : {in_french(e.rule, e.message)}")
    for inv in store.iter_invoices(flow.id):
        click.echo(  # the id (`relais invoices ID`) beside the number the partner quotes
            f"  {inv.id}  {inv.status.value} {inv.status.label:<10} {inv.number or '?':<16} "
            f"acheteur {inv.buyer_siret or '?'} service {inv.service_code or '-'}  {inv.entry_name}"
        )
        for e in inv.errors:
            click.echo(f"        [{e.flag}] {e.rule} en {e.location} : {in_french(e.rule, e.message)}")
        for h in history.get(inv.id, []):
            if h.previous is not None:
                click.echo("        " + history_line(h))
    pending = Counter((o.kind, o.status) for o in outbox)
    for (kind, status), n in sorted(pending.items()):
        click.echo(f"  file d'envoi {kind} : {n} {status}")
    for m in as2:  # AS2 messages: the one that brought the flow in, those that carried its return flow out
        way = "reçu de" if m.direction == "in" else "envoyé à"
        click.echo(
            f"  AS2 {way} {m.as2_from if m.direction == 'in' else m.as2_to}: {m.message_id}"
            f"  MIC {m.mic or '-'} ({m.mic_digest or '-'})  MDN {m.mdn_mode or 'none'}: {m.mdn_status}"
            + (f"  [{m.detail}]" if m.detail and m.mdn_status not in ("processed", "mdn-ok") else "")
        )
