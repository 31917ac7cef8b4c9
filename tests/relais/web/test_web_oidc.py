"""Signing in to the web application through an OpenID Connect provider (relais/web/auth/oidc.py).

The provider is tests/support/oidc_stub.py (discovery, JWKS, /authorize, /token with PKCE, /userinfo), the web
application `create_app(..., oidc=config)`, both served by uvicorn in threads; the browser is httpx
following each redirect by hand (and, when Debian's chromium is there, headless Chromium with the
provider on another site, where the SameSite=Strict session cookie is not sent with its redirect).
"""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import uvicorn

from relais.api.serve import Server
from relais.compose import Runtime
from relais.settings import Settings
from relais.web.app import create_app
from relais.web.auth import oidc
from tests.support.oidc_stub import StubProvider
from tests.support.waiting import SERVER_START_SECONDS

CLIENT_ID, CLIENT_SECRET = "relais-web", "stub-client-secret"


class _Web:
    """The web application (with OpenID Connect installed) in a background thread."""

    def __init__(self, rt: Runtime, config: oidc.OidcConfig) -> None:
        app = create_app(rt, secret="test-session-secret-" + "x" * 32, oidc=config)
        self._ready = threading.Event()
        cfg = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False, lifespan="off")
        self.server = Server(cfg, on_ready=lambda _s: self._ready.set())
        self._thread = threading.Thread(target=self.server.run, name="relais-web-oidc", daemon=True)

    def __enter__(self) -> str:
        self._thread.start()
        assert self._ready.wait(SERVER_START_SECONDS) and self.server.port, "the web server did not start"
        return f"http://127.0.0.1:{self.server.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(10)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[dict]:
    home = tmp_path_factory.mktemp("web-oidc") / "home"
    rt = Runtime.open(Settings.from_env(home, stable_seconds=0.0))
    with StubProvider(CLIENT_ID, CLIENT_SECRET) as idp:
        idp.add_user("alice", ["staff", "relais-ops"], email="alice@example.org")
        idp.add_user("bob", ["relais-partner-op-b"])
        idp.add_user("carol", ["staff", "accounting"])
        idp.add_user("erin", ["relais-ops"])
        idp.add_user("frank", ["relais-viewer"])
        idp.add_user("gina", ["relais-viewer"])
        config = oidc.OidcConfig.from_env(
            {
                "RELAIS_OIDC_ISSUER": idp.url,
                "RELAIS_OIDC_CLIENT_ID": CLIENT_ID,
                "RELAIS_OIDC_CLIENT_SECRET": CLIENT_SECRET,
                "RELAIS_OIDC_SCOPES": "openid profile groups",
            }
        )
        assert config is not None
        with _Web(rt, config) as url:
            yield {"url": url, "idp": idp, "rt": rt}
    rt.close()


@pytest.fixture(autouse=True)
def _fresh(site):
    site["idp"].tamper, site["idp"].login_page = None, False
    site["idp"].userinfo_only = set()


def _sign_in(site: dict, login: str, *, next_: str = "") -> tuple[httpx.Client, httpx.Response]:
    """/login/oidc -> the provider's /authorize -> the callback, each redirect followed by hand."""
    site["idp"].login_as = login
    c = httpx.Client(base_url=site["url"], follow_redirects=False, timeout=30)
    r = c.get("/login/oidc" + (f"?next={next_}" if next_ else ""))
    assert r.status_code == 302, r.text
    authorize = r.headers["location"]
    assert authorize.startswith(site["idp"].url + "/authorize?")
    q = parse_qs(urlsplit(authorize).query)
    assert q["code_challenge_method"] == ["S256"] and q["code_challenge"][0] and q["nonce"][0] and q["state"][0]
    assert q["redirect_uri"] == [site["url"] + "/login/oidc/callback"]
    back = httpx.get(authorize, follow_redirects=False, timeout=30)  # the provider sees none of our cookies
    assert back.status_code == 302, back.text
    assert back.headers["location"].startswith(site["url"] + "/login/oidc/callback?")
    return c, c.get(back.headers["location"])


def _audit(site: dict, target: str | None = None) -> list:
    return [
        a for a in site["rt"].store.audit_rows() if a.action == "web.login" and (target is None or a.target == target)
    ]


def _anonymous(c: httpx.Client) -> bool:
    r = c.get("/flows")
    return r.status_code == 303 and r.headers["location"].startswith("/login")


def test_an_ops_group_user_signs_in_and_reaches_the_flows(site):
    c, r = _sign_in(site, "alice")
    assert r.status_code == 303 and r.headers["location"] == "/flows", r.text
    page = c.get("/flows")
    assert page.status_code == 200 and "alice (ops)" in page.text
    assert c.get("/audit").status_code == 200  # ops only
    user = site["rt"].store.web_user("alice")
    assert (user.role, user.partner, user.password_hash, user.disabled) == ("ops", None, None, False)
    assert site["idp"].token_requests[-1] == {
        "client_id": CLIENT_ID,
        "grant_type": "authorization_code",
        "pkce": "S256",
    }
    [row] = _audit(site, "alice")
    sub = site["idp"].users["alice"]["sub"]
    assert (row.principal, row.outcome, row.http_status) == ("web:alice", "ok", 303) and f"sub={sub}" in row.detail
    # no password: the local login never works for an OpenID Connect user
    for password in ("", "x"):
        local = _local_login(site["url"], "alice", password)
        assert local.status_code == 401
    # signing in again is the same user, and `next` is honoured
    c2, r2 = _sign_in(site, "alice", next_="/audit")
    assert r2.status_code == 303 and r2.headers["location"] == "/audit"
    assert [u.name for u in site["rt"].store.web_users()].count("alice") == 1


def _local_login(url: str, name: str, password: str) -> httpx.Response:
    """The password login, as its form posts it (with the login page's token)."""
    with httpx.Client(base_url=url, timeout=30) as c:
        token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text)
        assert token
        return c.post("/login", data={"username": name, "password": password, "csrf": token.group(1)})


def test_a_partner_group_user_is_a_partner_user_of_that_partner(site):
    c, r = _sign_in(site, "bob")
    assert r.status_code == 303 and r.headers["location"] == "/flows", r.text
    page = c.get("/flows")
    assert page.status_code == 200 and "bob (partner · op-b)" in page.text
    assert c.get("/audit").status_code == 404
    user = site["rt"].store.web_user("bob")
    assert (user.role, user.partner, user.password_hash) == ("partner", "op-b", None)
    # the groups decide at each sign-in: bob moved to the viewers
    site["idp"].users["bob"]["groups"] = ["relais-viewer"]
    try:
        before = c
        c, r = _sign_in(site, "bob")
        assert r.status_code == 303
        assert _anonymous(before), "the role change ended the partner session"
        user = site["rt"].store.web_user("bob")
        assert (user.role, user.partner) == ("viewer", None) and "bob (viewer)" in c.get("/flows").text
    finally:
        site["idp"].users["bob"]["groups"] = ["relais-partner-op-b"]


def test_a_user_whose_groups_map_to_no_role_is_refused_and_audited(site):
    c, r = _sign_in(site, "carol")
    assert r.status_code == 403 and "no group maps to a Relais role" in r.text
    assert _anonymous(c)
    assert site["rt"].store.web_user("carol") is None
    [row] = _audit(site, "carol")
    assert row.principal == f"web:oidc:{site['idp'].users['carol']['sub']}"
    assert (row.outcome, row.http_status) == ("refused", 403) and "staff, accounting" in row.detail


@pytest.mark.parametrize("tamper", ["signature", "audience", "nonce", "expired", "issuer"])
def test_an_id_token_that_does_not_validate_is_refused(site, tamper):
    before = len(_audit(site))
    site["idp"].tamper = tamper
    name = {"signature": "alice", "audience": "erin", "nonce": "frank", "expired": "gina", "issuer": "bob"}[tamper]
    c, r = _sign_in(site, name)
    assert r.status_code == 403 and "no valid ID token" in r.text
    assert _anonymous(c)
    [row] = _audit(site)[before:]
    assert (row.principal, row.outcome, row.http_status) == ("web:oidc:unverified", "refused", 403)
    assert row.detail.startswith("no valid ID token:"), row.detail


def test_a_disabled_user_is_refused(site):
    rt = site["rt"]
    rt.store.add_web_user("erin", "ops", None, None)
    rt.store.set_web_user("erin", disabled=True)
    c, r = _sign_in(site, "erin")
    assert r.status_code == 403 and "disabled" in r.text
    assert _anonymous(c)
    row = _audit(site, "erin")[-1]
    assert row.principal == f"web:oidc:{site['idp'].users['erin']['sub']}" and row.outcome == "refused"
    assert rt.store.web_user("erin").disabled


def test_a_local_user_signing_in_through_the_provider_loses_its_password(site):
    from relais.web.auth.passwords import hash_password

    rt = site["rt"]
    rt.store.add_web_user("frank", "ops", None, hash_password("frank-local-1"))
    ok = _local_login(site["url"], "frank", "frank-local-1")
    assert ok.status_code == 303
    c, r = _sign_in(site, "frank")
    assert r.status_code == 303
    user = rt.store.web_user("frank")
    assert (user.role, user.password_hash) == ("viewer", None)  # the provider's groups, no password
    again = _local_login(site["url"], "frank", "frank-local-1")
    assert again.status_code == 401
    # linked at this first sign-in through the provider (it had no link yet)
    assert (user.oidc_issuer, user.oidc_sub) == (site["idp"].url, site["idp"].users["frank"]["sub"])


def test_the_account_is_linked_to_the_provider_s_issuer_and_sub(site):
    """Linked at the first sign-in; the same name with another sub, another issuer, or the same identity
    under another name is refused (403, French first) and audited."""
    rt, idp = site["rt"], site["idp"]
    hank = idp.add_user("hank", ["relais-viewer"])
    c, r = _sign_in(site, "hank")
    assert r.status_code == 303
    user = rt.store.web_user("hank")
    assert (user.oidc_issuer, user.oidc_sub) == (idp.url, hank["sub"])
    first_sub = hank["sub"]
    try:
        hank["sub"] = "someone-else-named-hank"  # another person given the name at the provider
        c2, r = _sign_in(site, "hank")
        assert r.status_code == 403 and r.text.startswith(
            "Accès refusé : ce compte Relais est lié à une autre identité"
        )
        assert _anonymous(c2)
        row = _audit(site, "hank")[-1]
        assert (row.principal, row.outcome, row.http_status) == ("web:oidc:someone-else-named-hank", "refused", 403)
        assert "identity-mismatch" in row.detail and first_sub in row.detail
    finally:
        hank["sub"] = first_sub
    assert _sign_in(site, "hank")[1].status_code == 303  # the linked identity still signs in
    # an account linked to another provider (issuer)
    rt.store.add_web_user("ivan", "viewer", None, None)
    ivan = idp.add_user("ivan", ["relais-viewer"])
    assert rt.store.link_web_identity("ivan", "https://other-idp.example", ivan["sub"])
    c3, r = _sign_in(site, "ivan")
    assert r.status_code == 403 and "identity-mismatch" in _audit(site, "ivan")[-1].detail
    assert _anonymous(c3)
    # the same identity under another name (renamed at the provider): not a second account
    hank["preferred_username"] = "hank2"
    idp.users["hank2"] = hank
    try:
        c4, r = _sign_in(site, "hank2")
        assert r.status_code == 403 and rt.store.web_user("hank2") is None
        assert "linked to the account 'hank'" in _audit(site, "hank2")[-1].detail
    finally:
        hank["preferred_username"] = "hank"
        del idp.users["hank2"]


def test_groups_only_in_userinfo_are_used(site):
    site["idp"].userinfo_only = {"groups"}
    c, r = _sign_in(site, "gina")
    assert r.status_code == 303 and "gina (viewer)" in c.get("/flows").text


def test_a_callback_without_the_session_cookie_reloads_itself_from_this_site(site):
    """What a browser does with the SameSite=Strict cookie after the provider's cross-site redirect."""
    site["idp"].login_as = "alice"
    c = httpx.Client(base_url=site["url"], follow_redirects=False, timeout=30)
    authorize = c.get("/login/oidc").headers["location"]
    callback = httpx.get(authorize).headers["location"]
    page = httpx.get(callback)  # no cookie
    assert page.status_code == 200 and "refresh" in page.text
    m = re.search(r'content="0;url=([^"]+)"', page.text)
    assert m and "hop=1" in m.group(1)
    reload = m.group(1).replace("&amp;", "&")
    assert reload.startswith("/login/oidc/callback?")
    assert httpx.get(site["url"] + reload).status_code == 403  # still no cookie: refused, not a loop
    r = c.get(reload)  # the cookie comes with it
    assert r.status_code == 303 and r.headers["location"] == "/flows"
    # a forged or replayed state is refused
    assert c.get(callback + "&hop=1").status_code == 403


def test_the_configuration_from_the_environment():
    assert oidc.OidcConfig.from_env({"RELAIS_OIDC_CLIENT_ID": "x"}) is None
    with pytest.raises(ValueError, match="RELAIS_OIDC_CLIENT_SECRET"):
        oidc.OidcConfig.from_env({"RELAIS_OIDC_ISSUER": "https://idp", "RELAIS_OIDC_CLIENT_ID": "x"})
    c = oidc.OidcConfig.from_env(
        {
            "RELAIS_OIDC_ISSUER": "https://idp.example/realms/acme/",
            "RELAIS_OIDC_CLIENT_ID": "relais",
            "RELAIS_OIDC_CLIENT_SECRET": "s",
            "RELAIS_OIDC_USERNAME_CLAIM": "email",
            "RELAIS_OIDC_GROUPS_CLAIM": "roles",
            "RELAIS_OIDC_GROUP_ROLES": "edi-admins=ops,acme-edi=partner:op-a",
            "RELAIS_OIDC_PARTNER_GROUP_PREFIX": "",
        }
    )
    assert c is not None and c.metadata_url == "https://idp.example/realms/acme/.well-known/openid-configuration"
    assert (c.username_claim, c.groups_claim, c.scopes) == ("email", "roles", ("openid", "profile", "email"))
    assert c.role_for(["/edi-admins"]) == ("ops", None) and c.role_for(["acme-edi"]) == ("partner", "op-a")
    assert c.role_for(["relais-ops", "relais-partner-x"]) is None  # these defaults were replaced
    with pytest.raises(ValueError, match="role must be"):
        oidc.OidcConfig("https://idp", "c", "s", group_roles={"g": "admin"})


def test_in_chromium_with_the_provider_on_another_site(site):
    """The app at http://localhost:<port>, the provider at http://127.0.0.1:<port>: two sites, so the
    browser leaves the SameSite=Strict session cookie out of the provider's redirect."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (scripts/apt-packages.txt)")
    sync_api = pytest.importorskip("playwright.sync_api")
    site["idp"].login_as, site["idp"].login_page = "alice", True
    app = site["url"].replace("127.0.0.1", "localhost")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            seen: list[str] = []
            page.on("request", lambda req: seen.append(req.url))
            page.goto(app + "/login/oidc")
            page.click("#sign-in")  # a navigation the provider's page starts: cross-site
            page.wait_for_url(app + "/flows", timeout=15000)
            assert "alice (ops)" in page.content()
            cookie = next(k for k in page.context.cookies() if k["name"] == "relais_session")
            assert cookie["sameSite"] == "Strict"
        finally:
            browser.close()
    callbacks = [u for u in seen if "/login/oidc/callback" in u]
    assert len(callbacks) == 2 and "hop=1" in callbacks[1], seen  # the cookie-less one, then the reload
