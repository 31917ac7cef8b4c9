"""Billing frameworks (cadres de facturation): what each piece is, who deposits it, which circuit it walks.

Everything here is data, as in `flows.domain.lifecycle`. Each `Framework` (A1..A25) has a
`FrameworkInfo`: its labels, the platform's long API name (``A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR``),
who deposits it, the *steps* it walks after intake (`Step`), and which frameworks it may follow in a
billing file (association, BT-25). ``docs/billing-frameworks.md`` has the whole table and the choices
made where the public texts are silent.

A piece reads its framework from BT-23 (`parse`): no BT-23, or a value that is not an ``A``-code (a
Peppol profile URN), is A1; an ``A``-code that is no framework (``A26``, ``A0``) is `NotAFramework`.

>>> parse(None), parse("urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"), parse("a4")
(<Framework.A1: 'A1'>, <Framework.A1: 'A1'>, <Framework.A4: 'A4'>)
>>> parse("A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR"), Framework.A4.api_name
(<Framework.A4: 'A4'>, 'A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR')
>>> parse("A26")
Traceback (most recent call last):
    ...
flows.domain.frameworks.NotAFramework: 'A26' is not a billing framework (A1 to A25)
>>> [s.value for s in Framework.A10.steps], Framework.A10.needs_validator
(['validator', 'moe'], True)
>>> sorted(f.value for f in Framework.A19.follows), Framework.A19.initial
(['A15', 'A16'], False)
>>> Framework.A9.flow_family, Framework.A4.flow_family, Framework.A1.flow_family
('plain', 'works', 'plain')
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Mapping
from types import MappingProxyType


class Framework(enum.StrEnum):
    """BT-23, the billing framework of a piece (cadre de facturation). Its data: `FRAMEWORKS`."""

    A1 = "A1"
    A2 = "A2"
    A3 = "A3"
    A4 = "A4"
    A5 = "A5"
    A6 = "A6"
    A7 = "A7"
    A8 = "A8"
    A9 = "A9"
    A10 = "A10"
    A11 = "A11"
    A12 = "A12"
    A13 = "A13"
    A14 = "A14"
    A15 = "A15"
    A16 = "A16"
    A17 = "A17"
    A18 = "A18"
    A19 = "A19"
    A20 = "A20"
    A21 = "A21"
    A22 = "A22"
    A23 = "A23"
    A24 = "A24"
    A25 = "A25"

    @property
    def info(self) -> FrameworkInfo:
        return FRAMEWORKS[self]

    @property
    def api_name(self) -> str:
        return FRAMEWORKS[self].api_name

    @property
    def label_fr(self) -> str:
        return FRAMEWORKS[self].label_fr

    @property
    def label_en(self) -> str:
        return FRAMEWORKS[self].label_en

    @property
    def steps(self) -> tuple[Step, ...]:
        return FRAMEWORKS[self].steps

    @property
    def follows(self) -> frozenset[Framework]:
        return FRAMEWORKS[self].follows

    @property
    def initial(self) -> bool:
        """An initial deposit (dépôt initial): it starts a billing file, its BT-25 is not an association."""
        return not FRAMEWORKS[self].follows

    @property
    def needs_validator(self) -> bool:
        return Step.VALIDATOR in FRAMEWORKS[self].steps

    @property
    def flow_family(self) -> str:
        """``works`` for the pieces of a works contract (their flows are E4/E5), else ``plain``."""
        return "works" if FRAMEWORKS[self].works else "plain"


class Depositor(enum.StrEnum):
    """Who deposits a piece of this framework."""

    SUPPLIER = "supplier"  # the titulaire (or the beneficiary, the justice provider)
    SUBCONTRACTOR = "subcontractor"  # sous-traitant paid directly
    COCONTRACTOR = "cocontractor"  # cotraitant of a group
    MOE = "moe"  # maîtrise d'œuvre (project manager)
    MOA = "moa"  # maîtrise d'ouvrage (contracting authority)


class Step(enum.StrEnum):
    """One stage of a piece's circuit after intake: whose turn it is."""

    VALIDATOR = "validator"  # the titulaire (sub-contractor) or the mandataire (co-contractor), 1 or 2 levels
    MOE = "moe"  # the project manager takes the draft and answers with an état d'acompte / a general statement
    MOA = "moa"  # the contracting authority validates (TRANSMISE_MOA) or refuses (REFUSEE_MOA)
    SUPPLIER = "supplier"  # the general statement waits for the supplier's signed DGD (A8)
    RECIPIENT = "recipient"  # the finance service: an ordinary invoice from here on


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FrameworkInfo:
    api_name: str  # the platform's API name (codeCadreFacturation)
    label_fr: str
    label_en: str
    depositor: Depositor
    steps: tuple[Step, ...]
    follows: frozenset[Framework] = frozenset()  # empty: an initial deposit
    works: bool = False  # a piece of a works contract (CCAG Travaux): flows E4 / E5
    payment: bool = True  # False: no payment statuses (A2, already paid)
    replaces: bool = False  # its predecessor becomes REMPLACEE_PAR_A22 (A22, tacit procedure)


_F = Framework
_V, _MOE, _MOA, _SUP, _REC = Step.VALIDATOR, Step.MOE, Step.MOA, Step.SUPPLIER, Step.RECIPIENT
_DRAFTS_MONTHLY = frozenset({_F.A4, _F.A10, _F.A13})
_DRAFTS_FINAL = frozenset({_F.A7, _F.A11, _F.A14})


def _info(
    api_name: str, fr: str, en: str, depositor: Depositor, *steps: Step, follows: frozenset[Framework] = frozenset(),
    works: bool = False, payment: bool = True, replaces: bool = False,
) -> FrameworkInfo:  # fmt: skip
    return FrameworkInfo(
        api_name=api_name, label_fr=fr, label_en=en, depositor=depositor, steps=steps, follows=follows,
        works=works, payment=payment, replaces=replaces,
    )  # fmt: skip


_S, _SUB, _CO, _DM, _DA = (
    Depositor.SUPPLIER,
    Depositor.SUBCONTRACTOR,
    Depositor.COCONTRACTOR,
    Depositor.MOE,
    Depositor.MOA,
)

FRAMEWORKS: Mapping[Framework, FrameworkInfo] = MappingProxyType(
    {
        _F.A1: _info("A1_FACTURE_FOURNISSEUR", "facture", "invoice", _S, _REC),
        _F.A2: _info(
            "A2_FACTURE_FOURNISSEUR_DEJA_PAYEE", "facture déjà payée", "invoice already paid", _S, _REC, payment=False
        ),
        _F.A3: _info("A3_MEMOIRE_JUSTICE", "mémoire de frais de justice", "court fees statement", _S, _REC),
        _F.A4: _info(
            "A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR",
            "projet de décompte mensuel",
            "draft monthly statement",
            _S,
            _MOE,
            works=True,
        ),  # fmt: skip
        _F.A5: _info("A5_ETAT_ACOMPTE_FOURNISSEUR", "état d'acompte", "interim payment statement", _S, _REC),
        _F.A6: _info(
            "A6_ETAT_ACOMPTE_VALIDE_FOURNISSEUR",
            "état d'acompte validé",
            "validated interim payment statement",
            _S,
            _REC,
            follows=frozenset({_F.A5}),
        ),  # fmt: skip
        _F.A7: _info(
            "A7_PROJET_DECOMPTE_FINAL_FOURNISSEUR",
            "projet de décompte final",
            "draft final statement",
            _S,
            _MOE,
            works=True,
        ),  # fmt: skip
        _F.A8: _info(
            "A8_DECOMPTE_GENERAL_DEFINITIF_FOURNISSEUR",
            "décompte général et définitif signé",
            "signed final general statement",
            _S,
            _REC,
            follows=frozenset({_F.A20}),
            works=True,
        ),  # fmt: skip
        _F.A9: _info("A9_FACTURE_SOUSTRAITANT", "facture de sous-traitant", "sub-contractor invoice", _SUB, _V, _REC),
        _F.A10: _info(
            "A10_PROJET_DECOMPTE_MENSUEL_SOUSTRAITANT",
            "projet de décompte mensuel de sous-traitant",
            "sub-contractor draft monthly statement",
            _SUB,
            _V,
            _MOE,
            works=True,
        ),  # fmt: skip
        _F.A11: _info(
            "A11_PROJET_DECOMPTE_FINAL_SOUSTRAITANT",
            "projet de décompte final de sous-traitant",
            "sub-contractor draft final statement",
            _SUB,
            _V,
            _MOE,
            works=True,
        ),  # fmt: skip
        _F.A12: _info("A12_FACTURE_COTRAITANT", "facture de cotraitant", "co-contractor invoice", _CO, _V, _REC),
        _F.A13: _info(
            "A13_PROJET_DECOMPTE_MENSUEL_COTRAITANT",
            "projet de décompte mensuel de cotraitant",
            "co-contractor draft monthly statement",
            _CO,
            _V,
            _MOE,
            works=True,
        ),  # fmt: skip
        _F.A14: _info(
            "A14_PROJET_DECOMPTE_FINAL_COTRAITANT",
            "projet de décompte final de cotraitant",
            "co-contractor draft final statement",
            _CO,
            _V,
            _MOE,
            works=True,
        ),  # fmt: skip
        _F.A15: _info(
            "A15_ETAT_ACOMPTE_MOE",
            "état d'acompte (maîtrise d'œuvre)",
            "interim payment statement (MOE)",
            _DM,
            _MOA,
            follows=_DRAFTS_MONTHLY,
            works=True,
        ),  # fmt: skip
        _F.A16: _info(
            "A16_ETAT_ACOMPTE_VALIDE_MOE",
            "état d'acompte validé (maîtrise d'œuvre)",
            "validated interim payment statement (MOE)",
            _DM,
            _MOA,
            follows=_DRAFTS_MONTHLY,
            works=True,
        ),  # fmt: skip
        _F.A17: _info(
            "A17_PROJET_DECOMPTE_GENERAL_MOE",
            "projet de décompte général (maîtrise d'œuvre)",
            "draft general statement (MOE)",
            _DM,
            _MOA,
            follows=_DRAFTS_FINAL,
            works=True,
        ),  # fmt: skip
        _F.A18: _info(
            "A18_DECOMPTE_GENERAL_MOE",
            "décompte général (maîtrise d'œuvre)",
            "general statement (MOE)",
            _DM,
            _MOA,
            follows=_DRAFTS_FINAL,
            works=True,
        ),  # fmt: skip
        _F.A19: _info(
            "A19_ETAT_ACOMPTE_VALIDE_MOA",
            "état d'acompte validé (maîtrise d'ouvrage)",
            "validated interim payment statement (MOA)",
            _DA,
            _REC,
            follows=frozenset({_F.A15, _F.A16}),
            works=True,
        ),  # fmt: skip
        _F.A20: _info(
            "A20_DECOMPTE_GENERAL_MOA",
            "décompte général (maîtrise d'ouvrage)",
            "general statement (MOA)",
            _DA,
            _SUP,
            follows=frozenset({_F.A17, _F.A18}),
            works=True,
        ),  # fmt: skip
        _F.A21: _info(
            "A21_DEMANDE_REMBOURSEMENT_TIC", "demande de remboursement de la TIC", "TIC tax refund request", _S, _REC
        ),
        _F.A22: _info(
            "A22_PROJET_DECOMPTE_GENERAL_FOURNISSEUR_TACITE",
            "projet de décompte général (procédure tacite)",
            "draft general statement (tacit procedure)",
            _S,
            _MOA,
            follows=_DRAFTS_FINAL | {_F.A17, _F.A18},
            works=True,
            replaces=True,
        ),  # fmt: skip
        _F.A23: _info(
            "A23_DECOMPTE_GENERAL_DEFINITIF_TACITE_FOURNISSEUR",
            "décompte général et définitif tacite",
            "tacit final general statement",
            _S,
            _REC,
            follows=frozenset({_F.A22}),
            works=True,
        ),  # fmt: skip
        _F.A24: _info(
            "A24_DECOMPTE_GENERAL_DEFINITIF_TACITE_MOE",
            "décompte général et définitif tacite (maîtrise d'œuvre)",
            "tacit final general statement (MOE)",
            _DM,
            _REC,
            follows=frozenset({_F.A22, _F.A23}),
            works=True,
        ),  # fmt: skip
        _F.A25: _info(
            "A25_DECOMPTE_GENERAL_DEFINITIF_MOA_TACITE",
            "décompte général et définitif (procédure tacite, MOA)",
            "final general statement under the tacit procedure (MOA)",
            _DA,
            _REC,
            follows=frozenset({_F.A22, _F.A23, _F.A24}),
            works=True,
        ),  # fmt: skip
    }
)

#: The framework of a piece without BT-23.
DEFAULT = Framework.A1


class NotAFramework(ValueError):
    """BT-23 holds an ``A``-code that is not a billing framework (A1..A25)."""

    def __init__(self, value: str) -> None:
        self.value = value
        super().__init__(f"{value!r} is not a billing framework (A1 to A25)")


#: An ``A``-code: ASCII digits only (``\d`` would take other scripts' digits, "A٤" for A4), as many as
#: written (``A1000`` is an ``A``-code that is no framework, not a plain invoice), then any long name.
_A_CODE = re.compile(r"A([0-9]+)(?:_.*)?", re.ASCII | re.DOTALL)


def parse(value: str | None) -> Framework:
    """The framework BT-23 names: its code (``A4``) or the platform's long name
    (``A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR``, read by its prefix), case and spaces aside. No value, or
    one that is not an ``A``-code (a Peppol profile URN), is A1; an ``A``-code that is no framework
    raises `NotAFramework`.

    >>> parse(" a9 "), parse("A4_PROJET_DECOMPTE_MENSUEL_FOURNISSEUR"), parse("A09"), parse("A٤")
    (<Framework.A9: 'A9'>, <Framework.A4: 'A4'>, <Framework.A9: 'A9'>, <Framework.A1: 'A1'>)
    >>> for bad in ("A26", "A1000", "A" + "9" * 5000):
    ...     try:
    ...         parse(bad)
    ...     except NotAFramework:
    ...         print("not a framework")
    not a framework
    not a framework
    not a framework
    """
    text = (value or "").strip().upper()
    found = _A_CODE.fullmatch(text)
    if found is None:
        return DEFAULT
    code = "A" + (found[1].lstrip("0") or "0")  # no int(): a 5,000-digit code would exceed its limit
    try:
        return Framework(code)
    except ValueError:
        raise NotAFramework(value.strip() if value else "") from None


def may_follow(follower: Framework, previous: Framework) -> bool:
    """Whether a piece of `follower` may be associated to one of `previous` in a billing file.

    >>> may_follow(Framework.A15, Framework.A4), may_follow(Framework.A19, Framework.A4)
    (True, False)
    """
    return previous in FRAMEWORKS[follower].follows


def _check() -> None:
    for f, info in FRAMEWORKS.items():
        if not info.steps or info.steps[-1] not in (Step.RECIPIENT, Step.MOE, Step.MOA, Step.SUPPLIER):
            raise AssertionError(f"{f}: its circuit must end with a step")
        if not info.api_name.startswith(f"{f.value}_"):
            raise AssertionError(f"{f}: api name {info.api_name} does not start with its code")
    if set(FRAMEWORKS) != set(Framework):
        raise AssertionError("a framework has no info")


_check()
