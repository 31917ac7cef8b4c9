"""Readable (and JSON) views of flows, invoices and billing files for the CLI: the readable ones in French,
the JSON unchanged (new fields added, none renamed)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence

import click

from flows.domain.frameworks import Depositor
from flows.domain.history import HistoryEntry
from flows.domain.lifecycle import Actor
from flows.domain.model import Flow, FlowStatus, Invoice
from flows.domain.reasons import REASONS
from flows.returns.status import platform_reason
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
    """One status change, as `relais flows ID` and `relais invoices ID` print it; a refusal's or a
    suspension's reason code with its French label in brackets (flows.domain.reasons)."""
    came = f"{h.previous.code} -> " if h.previous is not None else "enregistrée "
    return (
        f"{h.at:%Y-%m-%d %H:%M:%S} {came}{h.status.code} {h.status.label} par {h.actor} ({h.source})"
        + (f" [motif {h.reason_code} : {reason_label(h.reason_code)}]" if h.reason_code else "")
        + (f": {platform_reason(h.reason)}" if h.reason else "")
    )


def reason_label(code: str | None, language: str = "fr") -> str:
    """The label of a reason code ('' for none; the code itself when the list no longer has it)."""
    if not code:
        return ""
    found = REASONS.get(code)
    return found.label(language) if found else code


def history_json(h: HistoryEntry) -> dict[str, object]:
    """A history entry as the JSON views give it: `HistoryEntry.as_json` and its reason code's French label."""
    return {**h.as_json(), "reason_label": reason_label(h.reason_code) or None}


def framework_json(inv: Invoice) -> dict[str, object]:
    """Where a piece stands in its billing circuit (docs/billing-frameworks.md), as JSON: its framework, file,
    previous piece, and whose turn it is until when (None once its status is final)."""
    waiting = not inv.status.is_final
    return {
        "framework": {"code": str(inv.framework), "label": inv.framework.label_fr},
        "billing_file": inv.billing_file_id,
        "previous": inv.previous_id,
        "holder": inv.holder if waiting else None,
        "due_at": inv.due_at.isoformat() if inv.due_at and waiting else None,
    }


def framework_line(inv: Invoice) -> str:
    """The piece's framework (code and French label), its billing file, the piece it follows, whose turn it
    is and until when."""
    return (
        f"cadre de facturation {inv.framework} ({inv.framework.label_fr})"
        + (f"  dossier {inv.billing_file_id}" if inv.billing_file_id else "")
        + (f"  suit {inv.previous_id}" if inv.previous_id else "")
        + _turn(inv)
    )


def _turn(inv: Invoice) -> str:
    """Whose turn it is and until when; nothing once the piece's status is final (nobody's turn)."""
    if inv.status.is_final or not inv.holder:
        return ""
    return f"  au tour de {inv.holder}" + (f" jusqu'au {inv.due_at:%Y-%m-%d %H:%M} UTC" if inv.due_at else "")


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
            **framework_json(inv),
            "errors": [e.as_json() for e in errors],
            "history": [history_json(h) for h in history],
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
    click.echo("  " + framework_line(inv))
    if inv.billing_file_id and inv.billing_file_id != inv.id or inv.previous_id:
        click.echo(f"  le dossier pièce par pièce : relais billing-files {inv.billing_file_id or inv.id}")
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
                "framework": str(i.framework),
                "billing_file": i.billing_file_id,
                "status": str(i.status),
                "buyer_siret": i.buyer_siret,
                "service_code": i.service_code,
                "delivered_to": i.delivered_to,
                "errors": [e.as_json() for e in i.errors],
                "history": [history_json(h) for h in history.get(i.id, [])],
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
            f"cadre {inv.framework:<3} acheteur {inv.buyer_siret or '?'} service {inv.service_code or '-'}"
            f"  {inv.entry_name}"
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


# ---- billing files (`relais billing-files ID`) -----------------------------------------------------------

#: Who acts, in French (flows.domain.lifecycle.Actor).
ACTORS_FR = {
    Actor.PLATFORM: "plateforme",
    Actor.RECIPIENT: "destinataire",
    Actor.SUPPLIER: "fournisseur",
    Actor.OPS: "exploitation",
    Actor.VALIDATOR: "valideur",
    Actor.MOE: "maîtrise d'œuvre",
    Actor.MOA: "maîtrise d'ouvrage",
}
#: Who deposits a piece, in French (flows.domain.frameworks.Depositor).
DEPOSITORS_FR = {
    Depositor.SUPPLIER: "fournisseur (titulaire)",
    Depositor.SUBCONTRACTOR: "sous-traitant",
    Depositor.COCONTRACTOR: "cotraitant",
    Depositor.MOE: "maîtrise d'œuvre",
    Depositor.MOA: "maîtrise d'ouvrage",
}


def billing_file_json(store: Store, pieces: Sequence[Invoice]) -> dict[str, object]:
    """What `relais billing-files ID --json` prints: the file's id and its pieces in the order they were
    recorded, each with its depositor's role, framework, turn and whole status history."""
    partners = _partners(store, pieces)
    return {
        "id": pieces[0].billing_file_id or pieces[0].id,
        "pieces": [
            {
                "id": inv.id,
                "flow": inv.flow_id,
                "partner": partners.get(inv.flow_id),
                "number": inv.number,
                "supplier_id": inv.supplier_id,
                "buyer_siret": inv.buyer_siret,
                "depositor": {
                    "role": str(inv.framework.info.depositor),
                    "label": DEPOSITORS_FR[inv.framework.info.depositor],
                },
                "status": {"code": inv.status.code, "label": inv.status.label, "label_fr": inv.status.info.label_fr},
                **framework_json(inv),
                "history": [
                    {**history_json(h), "actor_label": ACTORS_FR[h.actor]} for h in store.invoice_history(inv.id)
                ],
            }
            for inv in pieces
        ],
    }


def print_billing_file(store: Store, file_id: str, as_json: bool = False) -> bool:
    """A billing file as a timeline: each piece (depositor, framework, the piece it follows, whose turn it
    is), then every status it took (when, who, the status, the reason's code and label, the reason).
    `file_id`: the file's id or any of its pieces'. False: no such file."""
    pieces = store.billing_file(file_id)
    if not pieces:
        return False
    if as_json:
        click.echo(json.dumps(billing_file_json(store, pieces), ensure_ascii=False))
        return True
    partners = _partners(store, pieces)
    click.echo(f"dossier de facturation {pieces[0].billing_file_id or pieces[0].id} : {len(pieces)} pièce(s)")
    for n, inv in enumerate(pieces, start=1):
        info = inv.framework.info
        click.echo(
            f"{n}. {inv.id}  {inv.framework} {info.label_fr}  déposée par : {DEPOSITORS_FR[info.depositor]}"
            f" ({partners.get(inv.flow_id) or '?'}, flux {inv.flow_id})"
        )
        click.echo(
            f"   numéro {inv.number or '?'}  fournisseur {inv.supplier_id or '?'}  acheteur {inv.buyer_siret or '?'}"
            + (f"  suit {inv.previous_id}" if inv.previous_id else "")
        )
        click.echo(f"   statut {inv.status.code} {inv.status.label} ({inv.status.info.label_fr})" + _turn(inv))
        for h in store.invoice_history(inv.id):
            click.echo(
                f"   {h.at:%Y-%m-%d %H:%M:%S}  {ACTORS_FR[h.actor]:<18} {h.status.code} {h.status.label}"
                f" · {h.status.info.label_fr}"
                + (f"  motif {h.reason_code} : {reason_label(h.reason_code)}" if h.reason_code else "")
                + (f"  « {platform_reason(h.reason)} »" if h.reason else "")
            )
    return True


def _partners(store: Store, pieces: Sequence[Invoice]) -> dict[str, str]:
    """The partner (depositor) of each piece's flow, by flow id."""
    found = {}
    for flow_id in dict.fromkeys(i.flow_id for i in pieces):
        flow = store.get_flow(flow_id)
        if flow is not None:
            found[flow_id] = flow.partner
    return found
