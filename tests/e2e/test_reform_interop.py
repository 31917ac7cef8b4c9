"""The reform end to end, as it runs in production, on SQLite and PostgreSQL: `relais run` passes (the CLI, a
process of its own), `relais as2 serve` and `relais api serve` (real servers on 127.0.0.1), and the partners'
side built by independent implementations only.

A supplier operator (`op-b2b`, Chorus Pro vocabulary) deposits a B2B invoice whose buyer is a line of the
reform's directory on platform 0042, the partner `pa-buyer` (CDAR vocabulary): the invoice is issued to it
over its channel (its folder) and is EN_COURS_ACHEMINEMENT (02). pa-buyer then reports on it in CDAR (each
message built by `tests/support/cdar_messages.py` and checked valid by Saxon): 202, 205 and a 207 with its
reason in real AS2 messages signed and encrypted by `openssl cms` (the MDN's signature checked by openssl
too), 204 deposited on the AFNOR flow service (multipart, httpx). Each is applied (actor partner_platform,
source cdar); op-b2b hears 02, 60, 61, 62, 64 in its CPPStatut status returns, in order, the 207's reason
with it. The replay of the 205 (the same AS2 message again, and the same CDAR in a new AS2 message) is
answered the same and applied once; another platform's message on that invoice is refused with RLS-C03.
What pa-buyer gets back in CDAR is what docs/reform.md §2 says: nothing for a message applied, a 501 for
one refused whole.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree

from connectors.as2 import certs
from flows.domain.history import Source
from flows.domain.lifecycle import Actor
from flows.domain.lifecycle import InvoiceStatus as I
from flows.domain.model import FlowCode, FlowStatus
from flows.returns import report as returnflow
from flows.store import Store
from relais import generate as gen
from relais.generate.directory import Recipient
from tests.connectors.as2.test_as2_compression import openssl_encrypt, openssl_sign, openssl_verified_content
from tests.support import cdar_messages as cm
from tests.support import relais_cli
from tests.support.as2_keys import make_test_keypair
from tests.support.waiting import SERVER_START_SECONDS, wait_until
from validators import cdar as official

BUYER = Recipient("70204275500240", "Société Exemple")
REFORM_CSV = "addressingIdentifier;platformId;platformName;status;effectiveFrom\n702042755;0042;PA Acheteur;Enabled;\n"
PROCESSED = "automatic-action/MDN-sent-automatically; processed"
NS = {"rsm": cm.RSM, "ram": cm.RAM}

BACKENDS = [
    pytest.param("sqlite", marks=pytest.mark.xdist_group("e2e_reform_sqlite")),
    pytest.param("postgresql", marks=[pytest.mark.xdist_group("e2e_reform_postgresql"), pytest.mark.postgres]),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class World:
    """One RELAIS_HOME with its store, `relais as2 serve` and `relais api serve` running, the partners' keys."""

    def __init__(self, base: Path, extra: dict[str, str], openssl: str) -> None:
        self.base, self.home, self.extra, self.openssl = base, base / "home", extra, openssl
        self.procs: list[subprocess.Popen] = []
        keys = base / "keys"
        keys.mkdir()
        self.keys: dict[str, tuple[Path, Path]] = {}
        for name in ("relais", "pa-buyer", "pa-other"):
            pair = (keys / f"{name}.pem", keys / f"{name}.key")
            certs.write_pem(make_test_keypair(name), *pair)
            self.keys[name] = pair
        partners = self.home / "partners"
        partners.mkdir(parents=True)
        (partners / "op-b2b.toml").write_text('id = "op-b2b"\nname = "Opérateur B2B"\nstatus_vocabulary = "cpp"\n')
        for pid, platform in (("pa-buyer", "0042"), ("pa-other", "0043")):
            cert, _ = self.keys[pid]
            rcert, rkey = self.keys["relais"]
            (partners / f"{pid}.toml").write_text(
                f'id = "{pid}"\nname = "{pid}"\nstatus_vocabulary = "cdar"\nplatform_id = "{platform}"\n'
                f'[as2]\nas2_id = "{pid.upper()}"\nour_as2_id = "RELAIS"\npartner_cert = "{cert}"\n'
                f'our_cert = "{rcert}"\nour_key = "{rkey}"\nrequire_signature = true\nrequire_encryption = true\n'
            )
        (base / "annuaire.json").write_text(json.dumps(gen.directory_document(gen.sample_directory(), "e2e")))
        (base / "reforme.csv").write_text(REFORM_CSV)
        self.cli("directory", "import", str(base / "annuaire.json"))
        self.cli("directory", "import", "--reform", str(base / "reforme.csv"))
        self.token = self.cli("api", "token", "create", "--partner", "pa-buyer").strip().splitlines()[-1]
        with _env(extra):
            from relais.settings import Settings

            settings = Settings.from_env(self.home)
        self.store = Store.open(settings.database_url, schema=settings.database_schema, migrate=False)
        try:
            self._start_servers()
        except BaseException:
            self.close()  # the server started already, if any
            raise

    def _start_servers(self) -> None:
        base, extra = self.base, self.extra
        port = _free_port()
        self.procs.append(
            relais_cli.start(
                self.home,
                "as2",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                extra=extra,
                log=base / "as2.log",
            )
        )
        self.as2_url = f"http://127.0.0.1:{port}/as2"
        wait_until(lambda: self._up(f"http://127.0.0.1:{port}/healthz"), SERVER_START_SECONDS, "relais as2 serve")
        api, self.api_url = relais_cli.start_api(self.home, base / "api.log", extra)
        self.procs.append(api)

    def _up(self, url: str) -> bool:
        if any(p.poll() is not None for p in self.procs):
            raise AssertionError(f"a server exited: {(self.base / 'as2.log').read_text()[-2000:]}")
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        for proc in self.procs:
            relais_cli.stop(proc)
        self.store.close()

    def cli(self, *args: str) -> str:
        done = relais_cli.relais(self.home, *args, extra=self.extra, timeout=300)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])
        return done.stdout

    def run(self) -> None:
        """One `relais run` pass: intake, every pending flow, the outbox, the status returns."""
        self.cli("run", "-q")

    def out(self, partner: str) -> Path:
        return self.home / "dropzones" / partner / "out"

    # ---- the partners' side: independent implementations -------------------------------------------------

    def as2(self, sender: str, name: str, data: bytes, message_id: str | None = None) -> tuple[httpx.Response, str]:
        """A real AS2 message (RFC 4130) of `data` from `sender`, signed then encrypted by `openssl cms`, posted
        to `relais as2 serve` with a signed synchronous MDN asked; (the answer, the AS2 Message-ID)."""
        entity = (
            b"Content-Type: application/xml\r\n"
            + f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'.encode()
            + data
        )
        work = self.base / "openssl"
        work.mkdir(exist_ok=True)
        signed = openssl_sign(self.openssl, work, entity, self.keys[sender])
        der = openssl_encrypt(self.openssl, work, signed, self.keys["relais"][0])
        mid = message_id or f"<{uuid.uuid4().hex}@{sender}.example>"
        headers = {
            "AS2-Version": "1.2",
            "AS2-From": sender.upper(),
            "AS2-To": "RELAIS",
            "Message-ID": mid,
            "Content-Type": "application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
            "Disposition-Notification-To": f"edi@{sender}.example",
            "Disposition-Notification-Options": "signed-receipt-protocol=optional, pkcs7-signature; "
            "signed-receipt-micalg=optional, sha-256",
        }
        return httpx.post(self.as2_url, content=der, headers=headers, timeout=60), mid

    def mdn(self, response: httpx.Response) -> str:
        """The disposition of a signed MDN, its signature checked by openssl against Relais's certificate."""
        assert response.status_code == 200, response.text
        ctype = response.headers["content-type"]
        assert ctype.startswith("multipart/signed"), ctype
        work = self.base / "openssl"
        entity = f"Content-Type: {ctype}\r\n\r\n".encode() + response.content
        content = openssl_verified_content(self.openssl, work, entity)
        done = subprocess.run(  # the signer is Relais: its certificate as the only trust anchor
            [self.openssl, "cms", "-verify", "-binary", "-crlfeol", "-CAfile", str(self.keys["relais"][0])],
            input=entity,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        found = re.search(rb"(?im)^disposition:\s*(.+?)\s*$", content)
        assert found, content[:2000]
        return found.group(1).decode()

    def create_flow(self, name: str, data: bytes, tracking: str) -> httpx.Response:
        """createFlow on the AFNOR flow service: multipart flowInfo + file, pa-buyer's token."""
        info = {"name": name, "flowSyntax": "CDAR", "trackingId": tracking, "sha256": hashlib.sha256(data).hexdigest()}
        files = {
            "flowInfo": (None, json.dumps(info), "application/json"),
            "file": (name, data, "application/xml"),
        }
        with httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60) as c:
            return c.post("/flow-service/v1/flows", files=files)

    def get_flow(self, flow_id: str) -> httpx.Response:
        with httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {self.token}"}, timeout=60) as c:
            return c.get(f"/flow-service/v1/flows/{flow_id}")


@contextlib.contextmanager
def _env(extra: dict[str, str]) -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("RELAIS_")}
    for k in saved:
        del os.environ[k]
    os.environ.update(extra)
    try:
        yield
    finally:
        for k in extra:
            os.environ.pop(k, None)
        os.environ.update(saved)


@pytest.fixture(params=BACKENDS)
def world(request, tmp_path) -> Iterator[World]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl command line is required (the partners' AS2 side)")
    with contextlib.ExitStack() as stack:
        extra: dict[str, str] = {}
        if request.param == "postgresql":
            from tests.conftest import PG_URL, private_schema

            extra = {
                "RELAIS_DATABASE_URL": PG_URL,
                "RELAIS_DATABASE_SCHEMA": stack.enter_context(private_schema("relais_reform")),
            }
        w = World(tmp_path, extra, openssl)
        stack.callback(w.close)
        yield w


@pytest.fixture(scope="module")
def contract(corpus: Path):
    from openapi_schema_validator import OAS30Validator

    spec = json.loads((corpus / "france-rfe" / "xp-z12-013" / "flow-service-1.3.0.json").read_text())
    return lambda name: OAS30Validator({"$ref": f"#/components/schemas/{name}", "components": spec["components"]})


def _cpp_statuses(w: World) -> list[tuple[str, str, str, str | None, str | None]]:
    """(invoice, IdStatut, Acteur, CodeMotif, Motif) of op-b2b's CPPStatut status returns, in order."""
    found = []
    paths = sorted(w.out("op-b2b").glob("ST*.xml"), key=lambda p: int(re.sub(r"\D", "", p.stem) or 0))
    for path in paths:
        data = path.read_bytes()
        returnflow.validate(data)
        for e in etree.fromstring(data).iter("CPPFactureStatut"):
            d = e.find("DonneesStatut")
            found.append(
                (
                    e.findtext("IdFacture"),
                    d.findtext("IdStatut"),
                    d.findtext("Acteur"),
                    d.findtext("CodeMotif"),
                    d.findtext("Motif"),
                )
            )
    return found


def _cdar_files(w: World, partner: str) -> list[Path]:
    out = w.out(partner)
    return sorted(out.glob("CDAR_*.xml")) if out.exists() else []


def _valid(data: bytes) -> bytes:
    assert official.check(data, runner=official.saxon()) == [], "the partner's message must be valid CDAR (Saxon)"
    return data


def test_a_b2b_invoice_and_its_lifecycle_between_two_platforms(world: World, contract):
    w = world
    # op-b2b deposits a B2B invoice; the reform's directory routes it to platform 0042 = pa-buyer
    name, data = gen.document("ubl", next(gen.plan(1, 1, [BUYER], seed=11)))
    inbox = w.home / "dropzones" / "op-b2b" / "in"
    inbox.mkdir(parents=True)
    (inbox / name).write_bytes(data)
    w.run()
    [flow] = [f for f in w.store.list_flows() if f.partner == "op-b2b"]
    assert flow.status is FlowStatus.IN_INTEGRE
    [inv] = list(w.store.iter_invoices(flow.id))
    assert inv.status is I.EN_COURS_ACHEMINEMENT
    assert (inv.routed_by, inv.routed_platform, inv.routed_away) == ("702042755", "0042", True)
    assert (w.out("pa-buyer") / f"{inv.id}.xml").read_bytes() == data  # issued over pa-buyer's channel
    assert [s[:3] for s in _cpp_statuses(w)] == [(inv.id, "02", "PLATEFORME")]

    def line(status: str, **kw: str) -> cm.Line:
        return cm.Line(inv.number, status, seller_siren=inv.supplier_id[:9], issue_date=inv.issue_date, **kw)

    def message(status: str, mid: str, **kw: str) -> bytes:
        return _valid(cm.message([line(status, **kw)], message_id=mid, buyer_siren="702042755"))

    def flow_of(partner: str, sha: str):
        [found] = [f for f in w.store.list_flows() if f.partner == partner and f.sha256 == sha]
        return found

    applied: list[tuple[str, str]] = []  # (flow id, channel) of pa-buyer's applied messages

    # 202 over AS2
    m202 = message("202", "PAB-202")
    response, _ = w.as2("pa-buyer", "cdar-202.xml", m202)
    assert w.mdn(response) == PROCESSED
    w.run()
    applied.append((flow_of("pa-buyer", hashlib.sha256(m202).hexdigest()).id, "as2"))

    # 204 on the AFNOR flow service (createFlow, flowSyntax CDAR)
    m204 = message("204", "PAB-204")
    r = w.create_flow("cdar-204.xml", m204, "pab-204")
    assert r.status_code == 202, r.text
    assert not list(contract("FullFlowInfo").iter_errors(r.json()))
    assert r.json()["flowSyntax"] == "CDAR"
    w.run()
    applied.append((r.json()["flowId"], "api"))

    # 205 over AS2
    m205 = message("205", "PAB-205")
    r205, mid205 = w.as2("pa-buyer", "cdar-205.xml", m205)
    assert w.mdn(r205) == PROCESSED
    w.run()
    applied.append((flow_of("pa-buyer", hashlib.sha256(m205).hexdigest()).id, "as2"))

    # 207 (en litige) with its reason, over AS2
    m207 = message("207", "PAB-207", reason_code="QTE_ERR", reason="3 colis livrés sur 4")
    response, _ = w.as2("pa-buyer", "cdar-207.xml", m207)
    assert w.mdn(response) == PROCESSED
    w.run()
    applied.append((flow_of("pa-buyer", hashlib.sha256(m207).hexdigest()).id, "as2"))

    # each applied: the flow integrated, its line recorded, the history's actor and source
    for flow_id, channel in applied:
        f = w.store.get_flow(flow_id)
        errors = [(e.rule, e.location, e.message) for e in w.store.flow_errors(flow_id)]
        assert errors == [], (channel, errors)
        assert (f.status, f.flow_code, f.channel.value, errors) == (FlowStatus.IN_INTEGRE, FlowCode.CDAR, channel, [])
        got = w.get_flow(flow_id)  # the flow service sees every deposit of the partner, any channel
        assert got.status_code == 200 and not list(contract("Flow").iter_errors(got.json()))
        assert got.json()["acknowledgement"]["status"] == "Ok"
    history = [h for h in w.store.invoice_history(inv.id) if h.source is Source.CDAR]
    assert [(h.status, h.actor) for h in history] == [
        (I.RECUE, Actor.PARTNER_PLATFORM),
        (I.PRISE_EN_CHARGE, Actor.PARTNER_PLATFORM),
        (I.APPROUVEE, Actor.PARTNER_PLATFORM),
        (I.EN_LITIGE, Actor.PARTNER_PLATFORM),
    ]
    assert (history[-1].reason_code, history[-1].reason) == ("QTE_ERR", "3 colis livrés sur 4")
    received = w.store.cdar_list(direction="in")
    assert sorted(r.message_id for r in received) == ["PAB-202", "PAB-204", "PAB-205", "PAB-207"]
    assert {(r.partner, r.issuer, r.outcome.value) for r in received} == {("pa-buyer", "0238:0042", "applied")}

    # op-b2b hears every change in its own vocabulary, in order, the 207's reason with it
    statuses = _cpp_statuses(w)
    assert [(i, code) for i, code, *_ in statuses] == [(inv.id, c) for c in ("02", "60", "61", "62", "64")]
    assert [a for _, _, a, _, _ in statuses[1:]] == ["PLATEFORME_PARTENAIRE"] * 4
    assert statuses[-1][3:] == ("QTE_ERR", "3 colis livrés sur 4")

    # docs/reform.md §2: a CDAR message applied whole gets no CDAR answer (only a refused one does)
    assert _cdar_files(w, "pa-buyer") == []
    entries = len(w.store.invoice_history(inv.id))

    # the replay of the 205: the same AS2 message again (AS2's own duplicate: the same MDN, no new flow) ...
    flows_before = len(w.store.list_flows())
    again, _ = w.as2("pa-buyer", "cdar-205.xml", m205, message_id=mid205)
    assert w.mdn(again) == PROCESSED
    w.run()
    assert len(w.store.list_flows()) == flows_before
    # ... and the same CDAR message in a new AS2 message: answered as the first (IN_INTEGRE), RLS-C06, not applied
    replay_response, replay_mid = w.as2("pa-buyer", "cdar-205-bis.xml", m205)
    assert w.mdn(replay_response) == PROCESSED
    w.run()
    inbound = w.store.as2_find("pa-buyer", replay_mid, "in")
    assert inbound is not None and inbound.flow_id
    replay = w.store.get_flow(inbound.flow_id)
    assert (replay.status, replay.flow_code) == (FlowStatus.IN_INTEGRE, FlowCode.CDAR)
    assert [e.rule for e in w.store.flow_errors(replay.id)] == ["RLS-C06"]
    assert len(w.store.invoice_history(inv.id)) == entries
    assert [r.message_id for r in w.store.cdar_list(direction="in")].count("PAB-205") == 1
    assert _cdar_files(w, "pa-buyer") == []  # answered as the first: no CDAR
    assert [code for _, code, *_ in _cpp_statuses(w)] == ["02", "60", "61", "62", "64"]  # nothing twice

    # another platform's message on that invoice (it was not issued to 0043): RLS-C03, nothing applied
    other = _valid(cm.message([line("210", reason_code="NON_CONFORME")], platform="0043", message_id="PAO-1"))
    response, other_mid = w.as2("pa-other", "cdar-other.xml", other)
    assert w.mdn(response) == PROCESSED
    w.run()
    refused = w.store.get_flow(w.store.as2_find("pa-other", other_mid, "in").flow_id)
    assert refused.status is FlowStatus.IN_REJETE
    assert [(e.rule, e.location) for e in w.store.flow_errors(refused.id)] == [
        ("RLS-C03", f"ligne 1, facture {inv.number}")
    ]
    assert w.store.get_invoice(inv.id).status is I.EN_LITIGE
    assert len(w.store.invoice_history(inv.id)) == entries
    # refused whole: pa-other's answer is a CDAR 501 (IRR_SYNTAX), valid for Saxon
    [answer] = _cdar_files(w, "pa-other")
    root = etree.fromstring(_valid(answer.read_bytes()))
    refs = root.findall("rsm:AcknowledgementDocument/ram:ReferenceReferencedDocument", NS)
    assert [
        (r.findtext("ram:ProcessConditionCode", namespaces=NS), r.findtext(".//ram:ReasonCode", namespaces=NS))
        for r in refs
    ] == [("501", "IRR_SYNTAX")]
    assert _cdar_files(w, "pa-buyer") == []
