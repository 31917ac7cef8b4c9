"""Render the rule catalogue as Markdown (docs/rules.md is generated from it and checked by a test)."""

from __future__ import annotations

from validators.rules import all_rules

HEADER = """# Rule codes

Generated from the rule registry by `python -m relais.rulesdoc > docs/rules.md`
(a test keeps it in sync). Grep a code to find the module where it lives:
`RLS-T*` in `flows/domain/technical.py`, `RLS-R*` (routing) in `validators/routing/`,
`RLS-P*` (platform rules: duplicates, attachments, amounts) in
`validators/platform/`, those of the billing frameworks in `validators/platform/circuits/`, `XSD` in `flows/domain/rule.py`. Each rule declares its
category (what consumers decide from: the return flow's error nature, the
invoice status) and its stage (what it needs: the received file, one document,
the store of earlier invoices, the recipient directory). A fatal finding
rejects the invoice (or, for a technical rule about the whole file, the flow);
`RLS-T99` is an incident: Relais failed, never a verdict. The flow is retried
automatically with backoff (`RELAIS_INCIDENT_RETRIES`, 3 by default), then
parked: its sender gets an IN_INCIDENTE return flow and ops reprocess it
(`relais flows reprocess`).

| code | category | stage | flag | message (en) | message (fr) |
|---|---|---|---|---|---|
"""


def render() -> str:
    rows = [
        f"| `{r.code}` | {r.category} | {r.stage} | {r.flag} | {r.message_en} | {r.message_fr} |" for r in all_rules()
    ]
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(render(), end="")
