"""Relais's pipeline core, one package per layer (imports point down only; pyproject.toml's contracts).

- ``domain``: the values and their rules: flows, invoices, lifecycles and history, rules and findings,
  errors, the outbox's items, the directory's records, leases, logs. Imports nothing of Relais.
- ``io``: hostile input read safely (XML, archives), detection, split, facts, attachments, atomic writes.
- ``store``: the database (one module per aggregate behind ``flows.store``) and its migrations.
- ``returns``: the return flows' writers (integration report, status return flows).
- ``directory``: the recipient directory's import and its formats.
- ``pipeline``: what moves a flow along: intake, processing, batches, dispatch, status changes and returns.
"""
