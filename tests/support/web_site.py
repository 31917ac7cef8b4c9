"""A small home served by both real servers, for the web hardening tests (tests/relais/web/test_web_headers.py,
tests/relais/api/test_crafted_params.py): two partners' batches processed by `relais run` (some invoices misrouted:
rejects, return flows), three web users, the web app (`WebThread`, uvicorn on 127.0.0.1) and the API
(`ServerThread`) over the same runtime, a recipient token and a partner token."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx

from flows.directory import importer as directory
from flows.domain.model import Flow
from relais import generate as gen
from relais.api import auth
from relais.compose import Runtime
from relais.runner import run_once
from relais.settings import Settings
from relais.web.auth.passwords import hash_password
from relais.web.serve import WebThread
from tests.support.api_server import make_token, serving
from tests.support.helpers import drop

PASSWORDS = {"alice": "ops-password-1", "bob": "partner-pass-1", "carol": "viewer-pass-1"}
USERS = {"alice": ("ops", None), "bob": ("partner", "op-b"), "carol": ("viewer", None)}


@dataclasses.dataclass
class Site:
    rt: Runtime
    url: str  # the web app
    api_url: str
    web_app: object  # the FastAPI applications, for their route tables
    api_app: object
    flows: dict[str, Flow]  # a flow per partner
    recipient_token: str  # of the buyer of op-a's first invoice
    partner_token: str  # op-a's
    invoice_id: str  # an invoice of op-a's flow, bought by the recipient_token's structure
    return_row: int  # an outbox row id of a return flow of op-a's flow

    def login(self, name: str) -> httpx.Client:
        c = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)
        m = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
        assert m, "the login form has no CSRF token"
        r = c.post("/login", data={"username": name, "password": PASSWORDS[name], "next": "/flows", "csrf": m[1]})
        assert r.status_code == 303, r.text[:500]
        return c


@contextlib.contextmanager
def _oidc(enabled: bool) -> Iterator[None]:
    """With `enabled`, a stub OpenID Connect provider (tests/support/oidc_stub.py) configured for the web app."""
    if not enabled:
        yield
        return
    import os

    from tests.support.oidc_stub import StubProvider

    with StubProvider("relais", "s3cret") as idp:
        env = {"RELAIS_OIDC_ISSUER": idp.url, "RELAIS_OIDC_CLIENT_ID": "relais", "RELAIS_OIDC_CLIENT_SECRET": "s3cret"}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@contextlib.contextmanager
def serving_site(tmp_path: Path, store: str = "sqlite", *, oidc: bool = False) -> Iterator[Site]:
    """The site on SQLite, or on a private schema of PostgreSQL (`store="postgresql"`); with `oidc`, the
    web app also signs users in through a stub OpenID Connect provider (its /login/oidc routes exist)."""
    db: dict[str, str] = {}
    schema = None
    if store == "postgresql":
        import uuid

        import sqlalchemy as sa

        from tests.conftest import PG_URL, require_pg

        require_pg()
        schema = f"relais_web_{uuid.uuid4().hex[:12]}"
        db = {"database_url": PG_URL, "database_schema": schema}
        eng = sa.create_engine(PG_URL)
        with eng.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    settings = Settings.from_env(tmp_path / "home", stable_seconds=0.0, workers=0, **db)
    rt = Runtime.open(settings)
    try:
        recipients = gen.sample_directory()
        path = tmp_path / "annuaire.json"
        path.write_text(json.dumps(gen.directory_document(recipients, "test-1")))
        directory.import_file(rt.store, path)
        for k, partner in enumerate(("op-a", "op-b")):
            [batch] = gen.write_batch(
                tmp_path / f"gen{k}",
                "ubl",
                4,
                2,
                batch="zip",
                recipients=recipients,
                misrouted_ratio=0.5,
                seed=21 + k,
                start=1 + 100 * k,
                name=f"lot-{partner}",
            )
            drop(rt, partner, batch.name, batch.read_bytes())
        flows = {f.partner: f for f in run_once(rt)}
        assert set(flows) == {"op-a", "op-b"}, flows
        for name, (role, partner) in USERS.items():
            rt.store.add_web_user(name, role, partner, hash_password(PASSWORDS[name]))
        invoice = next(i for i in rt.store.iter_invoices(flows["op-a"].id) if i.buyer_siret)
        returns = [o.id for o in rt.store.outbox_for_flow(flows["op-a"].id) if o.kind == "return"]
        with _oidc(oidc), WebThread(rt) as web, serving(rt) as api:
            yield Site(
                rt=rt,
                url=web.url,
                api_url=api.url,
                web_app=_unwrapped(web.server.config.app),
                api_app=api.server.config.app,
                flows=flows,
                recipient_token=make_token(rt, auth.RECIPIENT, siret=invoice.buyer_siret)[0],
                partner_token=make_token(rt, auth.PARTNER, partner="op-a")[0],
                invoice_id=invoice.id,
                return_row=returns[0] if returns else 1,
            )
    finally:
        rt.close()
        if schema is not None:
            with eng.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            eng.dispose()


def _unwrapped(app: object) -> object:
    """The FastAPI application inside the ASGI middleware that serve.py wraps it in (relais.httpguard)."""
    while not hasattr(app, "routes") and hasattr(app, "app"):
        app = app.app
    return app
