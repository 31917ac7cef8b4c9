"""A CDAR lifecycle message against the official artefacts: the CDAR D22B XSD, then the BR-FR-CDV schematron.

Both are the FNFE-MPE's files copied under ``schemas/cdar/`` (``SOURCE.md``). `check` gives every finding
as a `ValidationError`: the XSD's (rule ``XSD``) and the schematron's fatal asserts (their own ids,
``BR-FR-CDV-CL-09_MDT-113_213``...), with the official messages verbatim. It fails closed: a missing or
broken artefact, or an engine failure, raises `validators.schematron.SchematronError` (an incident), never an
empty list. The schematron runs on the native engine (`validators.native`, the XSLT compiled to Python) by
default; Saxon (`validators.schematron.Runner`) is the oracle, given as ``runner`` (the differential test
``tests/validators/test_cdar_native.py`` compares the two). Relais checks every CDAR message it writes before it leaves (`flows.returns.cdar`), and every one
it receives (`flows.pipeline`'s CDAR intake), with the same function.

>>> check(b'<a/>')[0].rule
'XSD'
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

from flows.domain.model import Flag, ValidationError
from flows.domain.rule import XSD
from flows.io import safexml
from validators.native import NativeRunner
from validators.schematron import RuleSet, Runner, SchematronError, read_version

CDAR_DIR = Path(__file__).resolve().parents[1] / "schemas" / "cdar"
XSD_PATH = CDAR_DIR / "xsd" / "CrossDomainAcknowledgementAndResponse_100pD22B.xsd"
XSLT_PATH = CDAR_DIR / "xslt" / "BR-FR-CDV-Schematron-CDAR.xslt"
MAX_ERRORS = 50


@functools.cache
def _schema() -> etree.XMLSchema:
    if not XSD_PATH.is_file():
        raise SchematronError(f"CDAR XSD not found: {XSD_PATH}", "cdar-xsd")
    parser = etree.XMLParser(no_network=True, resolve_entities=False)  # trusted, local: imports by relative path
    return etree.XMLSchema(etree.parse(str(XSD_PATH), parser))


@functools.cache
def ruleset() -> RuleSet:
    """The BR-FR-CDV schematron (compiled XSLT 2.0) as a rule set of `validators.schematron`."""
    if not XSLT_PATH.is_file():
        raise SchematronError(f"stylesheet not found: {XSLT_PATH}", "br-fr-cdv")
    return RuleSet(
        key="br-fr-cdv",
        name="BR-FR-CDV (CDAR, XP Z12-012)",
        version=read_version(XSLT_PATH),
        path=XSLT_PATH,
        source="schemas/cdar",
    )


_SAXON = Runner()


@functools.cache
def _native() -> NativeRunner:
    return NativeRunner()


def saxon() -> Runner:
    """The oracle: the official XSLT on Saxon."""
    return _SAXON


def xsd_errors(tree: etree._ElementTree) -> list[ValidationError]:
    """The CDAR D22B XSD's findings on `tree` (none: valid)."""
    schema = _schema()
    if schema.validate(tree):
        return []
    errors = [
        XSD.error(f"line {e.line}, column {e.column}" + (f" ({e.path})" if e.path else ""), e.message)
        for e in list(schema.error_log)[:MAX_ERRORS]
    ]
    return errors or [XSD.error("/", "schema validation failed")]  # fail closed


def check(data: bytes | etree._ElementTree, *, runner: Runner | NativeRunner | None = None) -> list[ValidationError]:
    """Every fatal finding of the XSD and the BR-FR-CDV schematron on a CDAR message (none: it passes).

    `data` is the message's bytes (read with `flows.io.safexml`: no DTD, no entities) or its parsed tree.
    A document the XSD refuses is not given to the schematron (its findings would describe a shape the
    schematron was not written for).
    """
    try:
        tree = safexml.parse(bytes(data)) if isinstance(data, bytes | bytearray) else data
    except etree.XMLSyntaxError as e:
        return [XSD.error("/", f"not well-formed XML: {e}")]
    errors = xsd_errors(tree)
    if errors:
        return errors
    findings = (runner or _native()).run(ruleset(), tree)
    return [f for f in findings if f.flag is Flag.FATAL]
