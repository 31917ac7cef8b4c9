"""B2B routing by the reform's directory, end to end through the pipeline: an invoice whose buyer is a line
of a partner's platform goes to that partner over its channel (its folder here) and is EN_COURS_ACHEMINEMENT
(02); a line of Relais itself is delivered locally (MISE_A_DISPOSITION); an unknown platform's goes to
``delivery/platforms/<id>/``; a disabled line refuses the invoice (RLS-R11); B2G is unchanged."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from flows.directory import importer as directory
from flows.directory import reform
from flows.domain.model import InvoiceStatus
from flows.store import tables
from relais import generate as gen
from relais.compose import Runtime
from relais.generate.directory import Recipient
from tests.support.helpers import drop, run

B2B = Recipient("70204275500240", "Société Exemple")
LOCAL = Recipient("55210055400013", "Autre Société")
AWAY = Recipient("73282932000074", "Troisième")
OFF = Recipient("40483304800022", "Quatrième")

CSV = "\n".join(
    [
        "addressingIdentifier;platformId;platformName;status;effectiveFrom",
        "702042755;0042;PA Une;Enabled;",
        "552100554_55210055400013;9998;Relais;Enabled;",
        "732829320;0777;PA Inconnue;Enabled;",
        "404833048;0042;PA Une;Disabled;",
    ]
)


@pytest.fixture
def b2b_rt(settings, directory_file, tmp_path):
    rt = Runtime.open(settings)
    directory.import_file(rt.store, directory_file[0])
    path = tmp_path / "reforme.csv"
    path.write_text(CSV)
    reform.import_file(rt.store, path)
    settings.partners_dir.mkdir(parents=True, exist_ok=True)
    (settings.partners_dir / "pa-une.toml").write_text('id = "pa-une"\nname = "PA Une"\nplatform_id = "0042"\n')
    rt.__dict__.pop("partners", None)
    yield rt
    rt.close()


def _drop(rt, recipient, seed):
    name, data = gen.document("ubl", next(gen.plan(1, 1, [recipient], seed=seed)))
    drop(rt, "op-a", name, data)
    [flow] = run(rt)
    [inv] = list(rt.store.iter_invoices(flow.id))
    return inv


def test_an_invoice_to_a_partner_platform_goes_to_that_partner_and_is_en_cours_acheminement(b2b_rt):
    inv = _drop(b2b_rt, B2B, 3)
    out = b2b_rt.settings.outbox_dir("pa-une")
    assert [p.name for p in out.iterdir()] == [f"{inv.id}.xml"]
    assert inv.status is InvoiceStatus.EN_COURS_ACHEMINEMENT
    assert (inv.routed_by, inv.routed_platform, inv.routed_away) == ("702042755", "0042", True)
    history = b2b_rt.store.invoice_history(inv.id)
    assert history[-1].status is InvoiceStatus.EN_COURS_ACHEMINEMENT


def test_a_line_of_relais_itself_is_delivered_locally(b2b_rt):
    inv = _drop(b2b_rt, LOCAL, 4)
    assert inv.status is InvoiceStatus.MISE_A_DISPOSITION and not inv.routed_away
    assert inv.delivered_to == str(b2b_rt.settings.delivery_dir / LOCAL.siret / "_" / f"{inv.id}.xml")


def test_an_unknown_platform_gets_its_folder(b2b_rt):
    inv = _drop(b2b_rt, AWAY, 5)
    assert inv.delivered_to == str(b2b_rt.settings.delivery_dir / "platforms" / "0777" / f"{inv.id}.xml")
    assert inv.status is InvoiceStatus.EN_COURS_ACHEMINEMENT


def test_a_disabled_line_refuses_the_invoice(b2b_rt):
    inv = _drop(b2b_rt, OFF, 6)
    assert inv.status is InvoiceStatus.REJETEE_ROUTAGE
    e = tables.validation_errors.c
    with b2b_rt.store.engine.connect() as conn:
        rules = conn.execute(sa.select(e.rule).where(e.invoice_id == inv.id)).scalars().all()
    assert rules == ["RLS-R11"]


def test_b2g_is_unchanged(b2b_rt, directory_file):
    plain = next(
        r for r in directory_file[1] if r.active and not (r.service_code_required or r.ej_required or r.ej_or_service)
    )
    inv = _drop(b2b_rt, plain, 7)
    assert inv.status is InvoiceStatus.MISE_A_DISPOSITION and inv.routed_by is None
