"""Judge one document: read it, then XSD, then business rules. No database, no directory.

This is what a validation worker runs (see `validators.pool`) and what
``relais validate`` runs: of the rule modules, stage DOCUMENT only
(`validators.runner`); the pipeline runs the stages that need the store
(duplicates) and the directory (routing). Internal failures are raised (fail
closed), never turned into a verdict.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from flows.domain import technical
from flows.domain.errors import Incident, Rejected
from flows.domain.model import Container, Syntax, ValidationError
from flows.domain.rule import Stage
from flows.io import detect, extract, safearchive, safexml
from validators.context import InvoiceContext
from validators.limits import Limits
from validators.runner import run as run_rules
from validators.xsd import XsdValidator

HEAD = 4096


@dataclasses.dataclass(frozen=True)
class JudgeConfig:
    """Everything a worker needs to judge documents; picklable."""

    ubl_xsd_dir: Path | None = None
    cii_xsd: Path | None = None
    rules_dir: Path | None = None
    max_xml_bytes: int = 200 * 1024 * 1024
    business_rules: bool = True
    rules_engine: str = "native"  # "native" (validators.native) or "official" (the XSLTs on Saxon: the oracle)
    native_cache: Path | None = None  # where the native engine keeps generated code (None: its default)
    platform_rules: bool = True  # the document's own platform rules (stage DOCUMENT: attachments, amounts)
    limits: Limits = Limits()


@dataclasses.dataclass(slots=True)
class Verdict:
    container: Container
    syntax: Syntax | None = None
    profile: str | None = None
    facts: extract.Facts | None = None
    errors: list[ValidationError] = dataclasses.field(default_factory=list)
    unreadable: bool = False  # refused before it could be read as an invoice
    xsd_valid: bool | None = None

    @property
    def rejected(self) -> bool:
        return any(e.fatal for e in self.errors)


#: Factur-X 1.0 guideline ids (FNFE 2017 examples) that today's code list no longer holds.
LEGACY_GUIDELINES = frozenset(
    {
        "urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:basic",
        "urn:cen.eu:en16931:2017:conformant:factur-x.eu:1p0:extended",
    }
)
GUIDELINE_CODE_RULE = "FX-SCH-A-000026"  # Factur-X schematron: guideline id must be in its code list
XRECHNUNG = "xrechnung"
_GUIDELINE = etree.XPath(
    "string(/*/*[local-name()='ExchangedDocumentContext']"
    "/*[local-name()='GuidelineSpecifiedDocumentContextParameter']/*[local-name()='ID'])"
)


def guideline(tree: etree._ElementTree) -> str:
    return " ".join(str(_GUIDELINE(tree)).split())


def facturx_profile(tree: etree._ElementTree) -> str | None:
    """Profile of an embedded CII: minimum, basicwl, basic, en16931, extended, or xrechnung
    (a CIUS of EN 16931, judged as plain CII)."""
    import facturx

    if "xrechnung" in guideline(tree).lower():
        return XRECHNUNG
    try:
        return facturx.get_level(tree.getroot(), "factur-x")
    except Exception:
        return None


def entry_container(data: bytes, entry_name: str) -> Container:
    """Container of one batch entry; refuses empty, nested and unknown entries."""
    if not data:
        raise Rejected(technical.EMPTY_FILE, location=entry_name)
    container = safearchive.sniff(data[:HEAD])
    if container in (Container.ZIP, Container.TAR_GZ):
        raise Rejected(technical.NESTED_ARCHIVE, f"{container} inside the batch", entry_name)
    if container not in (Container.XML, Container.PDF):
        raise Rejected(technical.UNKNOWN_FORMAT, location=entry_name)
    return container


class DocumentJudge:
    """Per-process judge: schemas and stylesheets are compiled once and reused."""

    def __init__(self, config: JudgeConfig = JudgeConfig()) -> None:
        self.config = config
        self.xsd = XsdValidator(config.ubl_xsd_dir, config.cii_xsd)
        self.limits = safexml.XmlLimits(max_bytes=config.max_xml_bytes)
        # Called once, before the native engine builds a rule set's code (a cold cache): `relais validate` says so.
        self.on_cold_rules: Callable[[str], None] | None = None
        self._warm: set[str] = set()

    @functools.cached_property
    def rulesets(self):  # validators.schematron.RuleSets
        from validators import schematron

        return schematron.discover(self.config.rules_dir)

    @functools.cached_property
    def runner(self):  # validators.schematron.Runner or validators.native.NativeRunner
        from validators import schematron

        if self.config.rules_engine == "official":
            return schematron.Runner()
        if self.config.rules_engine != "native":
            raise ValueError(f"unknown rules engine {self.config.rules_engine!r} (native or official)")
        from validators.native import NativeRunner

        return NativeRunner(cache_dir=self.config.native_cache)

    def versions(self) -> dict[str, str]:
        return self.rulesets.versions() if self.config.business_rules else {}

    def _business_rules(
        self, syntax: Syntax, profile: str | None, tree: etree._ElementTree, br_fr: bool
    ) -> list[ValidationError]:
        """EN 16931 / Factur-X profile (/ BR-FR) findings.

        - an XRechnung embedded in a PDF is plain CII: the EN 16931 CII rules;
        - a Factur-X EN16931-profile document also gets the CEN CII rules when the
          official artefacts are installed (the profile claims EN 16931 compliance);
        - a Factur-X 1.0 guideline id is accepted with a warning (RLS-T17).
        """
        sets = self.rulesets
        if syntax is Syntax.FACTURX and profile == XRECHNUNG:
            chosen = sets.for_document(Syntax.CII, None, br_fr=br_fr)
        else:
            chosen = sets.for_document(syntax, profile, br_fr=br_fr)
            if syntax is Syntax.FACTURX and (profile or "en16931") == "en16931" and sets.cii.source == "rules-dir":
                chosen.insert(1, sets.cii)
        errors: list[ValidationError] = []
        for ruleset in chosen:
            if self.on_cold_rules is not None and ruleset.key not in self._warm:
                self._warm.add(ruleset.key)
                if self.config.rules_engine == "native" and not self.runner.is_built(ruleset):
                    self.on_cold_rules(ruleset.key)
            errors.extend(self.runner.run(ruleset, tree))
        if syntax is Syntax.FACTURX and guideline(tree) in LEGACY_GUIDELINES:
            before = len(errors)
            errors = [e for e in errors if e.rule != GUIDELINE_CODE_RULE]
            if len(errors) != before:
                errors.append(
                    technical.LEGACY_GUIDELINE.error("GuidelineSpecifiedDocumentContextParameter/ID", guideline(tree))
                )
        return errors

    def judge(
        self,
        data: bytes,
        container: Container | None,
        *,
        entry_name: str = "",
        keep_going: bool = False,
        br_fr: bool = False,
    ) -> Verdict:
        """Verdict on one document. `container` None means a batch entry to recognise first."""
        verdict = Verdict(container or Container.UNKNOWN)
        try:
            verdict.container = container or entry_container(data, entry_name)
            detected = detect.detect(verdict.container, data, self.limits)
            tree = safexml.parse(detected.xml, limits=self.limits)
        except Rejected as r:
            error = r.to_error()
            if r.location == "/" and entry_name:
                error = dataclasses.replace(error, location=entry_name)
            verdict.errors.append(error)
            verdict.unreadable = True
            return verdict
        verdict.syntax = detected.syntax
        if detected.syntax is Syntax.FACTURX:
            verdict.profile = facturx_profile(tree)
            declared = detected.declared_profile
            if declared and verdict.profile and declared != verdict.profile:
                verdict.errors.append(
                    technical.PROFILE_MISMATCH.error(
                        "PDF metadata (XMP fx:ConformanceLevel)",
                        f"the PDF declares {declared}, the embedded XML is {verdict.profile}",
                    )
                )
        verdict.facts = extract.extract(detected.syntax, tree)
        as_cii = detected.syntax is Syntax.FACTURX and verdict.profile == XRECHNUNG
        xsd_errors = self.xsd.validate(Syntax.CII if as_cii else detected.syntax, tree, verdict.profile)
        verdict.xsd_valid = not xsd_errors
        verdict.errors.extend(xsd_errors)
        if not (verdict.xsd_valid or keep_going):
            return verdict  # as the platform does: the business rules need a valid structure
        if self.config.business_rules:
            try:
                verdict.errors.extend(self._business_rules(detected.syntax, verdict.profile, tree, br_fr))
            except Rejected as r:  # the rule engine refused the document itself (validators.schematron)
                verdict.errors.append(r.to_error())
                return verdict
            except Incident as e:
                if verdict.xsd_valid:
                    raise  # fail closed: a valid document whose rules cannot run is an incident
                verdict.errors.append(technical.RULES_NOT_RUN.error("/", str(e)[:300]))
        if self.config.platform_rules:
            # Stage DOCUMENT only: the duplicate rule needs the store and the routing rules the
            # directory; the pipeline runs those stages (flows.pipeline.process._decide).
            ctx = InvoiceContext.of_document(
                verdict.facts,
                detected.syntax,
                tree,
                limits=self.config.limits,
                xml_size=len(detected.xml),
                pdf=data if verdict.container is Container.PDF else None,
                xml_name=detected.embedded_name,
                prior=verdict.errors,
            )
            verdict.errors.extend(run_rules(ctx, [Stage.DOCUMENT]))
        return verdict


# ---- the native engine's generated code, built before the first flow needs it

BUILDING_NOTICE = "Règles natives en cours de construction (une fois)… / Building the native rules (once)…"


def _native_rule_sets(config: JudgeConfig) -> list | None:  # [validators.schematron.RuleSet]
    """Every rule set a judge of `config` may run natively, EN 16931 first; None with no native rules."""
    if not config.business_rules or config.rules_engine != "native":
        return None
    from validators import schematron

    return schematron.discover(config.rules_dir).all()


def unbuilt_rules(config: JudgeConfig) -> list[str]:
    """Keys of the rule sets whose native code is not in the cache yet: a judge would build them on first use.

    Empty with the official engine or without business rules."""
    from validators.native import NativeRunner

    sets = _native_rule_sets(config)
    if not sets:
        return []
    runner = NativeRunner(cache_dir=config.native_cache)
    return [rs.key for rs in sets if not runner.is_built(rs)]


def build_rules(config: JudgeConfig) -> list[str]:
    """Build (and cache) the native code of every rule set not cached yet; the keys built.

    One builder at a time per cache folder (a lock file there, not waited for: when another process is
    building, this one leaves it to it). Its own `NativeRunner`: a judge working beside it never waits on
    its lock (at worst it builds the rule set it needs itself, written atomically). A rule set that cannot
    be built is left to the judge that needs it, which fails closed (an incident), as without this."""
    import fcntl

    from validators.native import NativeRunner
    from validators.native.engine import default_cache_dir

    sets = _native_rule_sets(config)
    if not sets:
        return []
    runner = NativeRunner(cache_dir=config.native_cache)
    if all(runner.is_built(rs) for rs in sets):
        return []
    cache = Path(config.native_cache) if config.native_cache else default_cache_dir()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = (cache / ".build.lock").open("a")
    except OSError:
        return []  # a read-only cache: each judge builds what it needs in memory, as before
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return []  # another process is building them
        built = []
        for rs in sets:
            if runner.is_built(rs):
                continue
            try:
                runner.compile(rs)
            except Exception:
                continue
            built.append(rs.key)
        return built


def build_rules_in_background(config: JudgeConfig) -> threading.Thread:
    """`build_rules` in a daemon thread, started now: at a server's start (`relais run --watch`, API, web), not in the first flow.

    The thread runs at the lowest CPU priority (Linux: a thread's own nice value), so the flows it runs beside
    come first."""

    def build() -> None:
        if sys.platform == "linux":
            try:
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
            except OSError:
                pass
        build_rules(config)

    thread = threading.Thread(target=build, name="relais-native-build", daemon=True)
    thread.start()
    return thread
