"""What the terminal shows of billing frameworks (docs/billing-frameworks.md): `relais invoices ID` gives a piece's
framework (code and French label), billing file, previous piece, whose turn it is and until when, and its
reason codes; `relais flows ID` each invoice's framework; `relais billing-files ID` the file as a timeline.

The pieces are recorded straight into the home's store (tests/support/billing_files.py), as intake and
progression record them; the CLI runs in process (click's CliRunner) on that home.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
import structlog
from click.testing import CliRunner, Result

from flows.domain import log
from relais.cli import main
from relais.compose import Runtime
from relais.settings import Settings
from tests.support import billing_files
from tests.support.billing_files import MOE, Seeded


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Iterator[tuple[str, Seeded]]:
    saved, configured, was = structlog.get_config(), log._configured, structlog.is_configured()
    root = tmp_path_factory.mktemp("billing-cli") / "home"
    rt = Runtime.open(Settings.from_env(root, stable_seconds=0.0, workers=0))
    try:
        yield str(root), billing_files.seed(rt.store)
    finally:
        rt.close()
        if was:  # structlog left as it was found (the CLI configures it)
            structlog.configure(**saved)
        else:
            structlog.reset_defaults()
        log._configured = configured


def _relais(home: str, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("RELAIS_")}
    return CliRunner().invoke(main, ["--home", home, *args], env=env)


def test_an_invoice_shows_its_framework_file_turn_and_reason_codes(home) -> None:
    root, s = home
    out = _relais(root, "invoices", s.draft.id)
    assert out.exit_code == 0, out.output
    assert (
        f"cadre de facturation A10 (projet de décompte mensuel de sous-traitant)  dossier {s.draft.id}"
        f"  au tour de {MOE} jusqu'au 2026-12-27 12:00 UTC"
    ) in out.output
    follower = _relais(root, "invoices", s.statement.id).output
    assert f"cadre de facturation A15 (état d'acompte (maîtrise d'œuvre))  dossier {s.draft.id}  suit {s.draft.id}" in (
        follower
    )
    assert f"relais billing-files {s.draft.id}" in follower
    assert (
        "40 -> 43 REFUSEE_MOA par moa (api) [motif MARCHE : Référence du marché absente ou erronée]: "
        "Le marché cité n'est pas le bon"
    ) in follower
    plain = _relais(root, "invoices", s.plain.id).output
    assert "cadre de facturation A1 (facture)" in plain and "billing-files" not in plain  # alone in its file

    data = json.loads(_relais(root, "invoices", s.refused.id, "--json").output)
    assert data["framework"] == {"code": "A9", "label": "facture de sous-traitant"}
    # refused by its validator: final, nobody's turn any more (the store may still hold the last one)
    assert (data["billing_file"], data["previous"], data["holder"], data["due_at"]) == (s.refused.id, None, None, None)
    assert [(h["code"], h["reason_code"], h["reason_label"]) for h in data["history"]] == [
        ("20", None, None),
        ("22", "NON_AGREE", "Sous-traitant non accepté ou non agréé au paiement direct"),
    ]


def test_whose_turn_it_is_until_when(home) -> None:
    root, s = home
    data = json.loads(_relais(root, "invoices", s.draft.id, "--json").output)
    assert (data["holder"], data["due_at"]) == (MOE, "2026-12-27T12:00:00+00:00")
    assert data["status"] == {"code": "31", "label": "PRISE_EN_COMPTE_MOE"}


def test_a_flow_shows_each_invoices_framework(home) -> None:
    root, s = home
    out = _relais(root, "flows", s.flows["op-sub"].id)
    assert out.exit_code == 0, out.output
    lines = {line.split()[0]: line for line in out.output.splitlines() if line.startswith("  CPP")}
    assert "cadre A10" in lines[s.draft.id] and "cadre A9 " in lines[s.refused.id]
    assert "cadre A1 " in lines[s.plain.id]
    data = json.loads(_relais(root, "flows", s.flows["op-sub"].id, "--json").output)
    assert [(i["framework"], i["billing_file"]) for i in data["invoices"]] == [
        ("A10", s.draft.id),
        ("A9", s.refused.id),
        ("A1", s.plain.id),
    ]


@pytest.mark.parametrize("by", ["file", "piece"])
def test_a_billing_file_is_shown_piece_by_piece_as_a_timeline(home, by: str) -> None:
    root, s = home
    out = _relais(root, "billing-files", s.draft.id if by == "file" else s.statement.id)
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == f"dossier de facturation {s.draft.id} : 2 pièce(s)"
    assert lines[1].startswith(f"1. {s.draft.id}  A10 projet de décompte mensuel de sous-traitant")
    assert "déposée par : sous-traitant (op-sub" in lines[1]
    assert (
        f"au tour de {MOE}" in lines[3]
        and "31 PRISE_EN_COMPTE_MOE (prise en compte par la maîtrise d'œuvre)" in lines[3]
    )
    timeline = [line.split(maxsplit=2)[2] for line in lines[4:8]]  # time cut off
    assert [t.split()[0] for t in timeline] == ["plateforme", "valideur", "plateforme", "maîtrise"]
    assert [t.rsplit("  ", 1)[-1].strip() for t in timeline] == [
        "20 A_VALIDER_1 · à valider (valideur 1)",
        "21 VALIDEE_1 · validée (valideur 1)",
        "30 MISE_A_DISPOSITION_MOE · mise à disposition de la maîtrise d'œuvre",
        "31 PRISE_EN_COMPTE_MOE · prise en compte par la maîtrise d'œuvre",
    ]
    second = lines[8:]
    assert second[0].startswith(f"2. {s.statement.id}  A15 état d'acompte (maîtrise d'œuvre)")
    assert "déposée par : maîtrise d'œuvre (op-moe" in second[0] and f"suit {s.draft.id}" in second[1]
    assert "au tour de" not in second[2]  # refused: final, nobody's turn
    assert second[-1].endswith(
        "43 REFUSEE_MOA · refusée par la maîtrise d'ouvrage  motif MARCHE : Référence du marché absente ou erronée  « Le marché cité n'est pas le bon »"
    )
    assert "maîtrise d'ouvrage" in second[-1]


def test_a_billing_file_as_json(home) -> None:
    root, s = home
    data = json.loads(_relais(root, "billing-files", s.statement.id, "--json").output)
    assert data["id"] == s.draft.id
    draft, statement = data["pieces"]
    assert (draft["id"], draft["partner"], draft["depositor"]) == (
        s.draft.id,
        "op-sub",
        {"role": "subcontractor", "label": "sous-traitant"},
    )
    assert draft["framework"] == {"code": "A10", "label": "projet de décompte mensuel de sous-traitant"}
    assert [(h["code"], h["actor"], h["actor_label"]) for h in draft["history"]] == [
        ("20", "platform", "plateforme"),
        ("21", "validator", "valideur"),
        ("30", "platform", "plateforme"),
        ("31", "moe", "maîtrise d'œuvre"),
    ]
    assert (statement["previous"], statement["depositor"]["role"], statement["status"]["label"]) == (
        s.draft.id,
        "moe",
        "REFUSEE_MOA",
    )
    assert statement["history"][-1]["reason_code"] == "MARCHE"
    assert statement["history"][-1]["reason_label"] == "Référence du marché absente ou erronée"


def test_no_such_billing_file(home) -> None:
    root, _ = home
    out = _relais(root, "billing-files", "CPP9999999999-00001")
    assert out.exit_code == 1 and "aucun dossier de facturation « CPP9999999999-00001 »" in out.output


def test_the_platforms_delivery_reason_is_in_french() -> None:
    """`relais invoices` and `relais billing-files` print the platform's delivery in French, as the web does."""
    import datetime as dt

    from flows.domain.history import HistoryEntry, Source
    from flows.domain.lifecycle import Actor, InvoiceStatus
    from relais import report

    entry = HistoryEntry(
        id=1, invoice_id="CPP0000000001-00001", partner="op-a", status=InvoiceStatus.MISE_A_DISPOSITION,
        previous=InvoiceStatus.DEPOSEE, actor=Actor.PLATFORM, source=Source.PLATFORM,
        reason="delivered to the recipient", at=dt.datetime(2026, 12, 7, tzinfo=dt.UTC),
    )  # fmt: skip
    assert report.history_line(entry).endswith(
        "MISE_A_DISPOSITION par platform (platform): mise à disposition du destinataire"
    )
