"""The HTTP API of Relais (FastAPI): recipient structures read their invoices and set their statuses, senders
upload flows (the "mode API") and read their integration reports.

`relais api serve` starts it (`serve.py`); `app.create_app(rt)` builds the application over a
`relais.compose.Runtime`. Bearer tokens are made by `relais api token create` (`auth.py`). The contract is
``docs/api/openapi.json`` (compared with the served one by tests/relais/api/test_api_contract.py).
"""
