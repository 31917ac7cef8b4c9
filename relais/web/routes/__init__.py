"""The web application's routes, one `APIRouter` per page family; `ROUTERS` in the order
`relais.web.app.create_app` includes them (``/flows/poll`` before ``/flows/{flow_id}``). What they share
(the signed-in user's dependency, `render`, the checked form of an action) is relais/web/routes/common.py;
the sign-in through an OpenID Connect provider (relais/web/routes/oidc.py) is included only when one is
configured."""

from fastapi import APIRouter

from relais.web.routes import (
    account,
    actions,
    audit,
    billing_files,
    cdar,
    flow,
    flows,
    health,
    home,
    login,
    partners,
    waiting,
)

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    login.router,
    home.router,
    flows.router,
    flow.router,
    billing_files.router,
    cdar.router,
    actions.router,
    partners.router,
    waiting.router,
    audit.router,
    account.router,
)
