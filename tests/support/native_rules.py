"""Small stylesheets in the shape of the ISO schematron skeleton's output (what the CEN, Factur-X
and BR-FR artefacts are), for the native rule engine's tests: one mode per pattern, one template per
rule, each assert an ``xsl:choose`` around an ``svrl:failed-assert`` with a full-path location."""

from __future__ import annotations

import dataclasses
from xml.sax.saxutils import escape, quoteattr

XSL = "http://www.w3.org/1999/XSL/Transform"

HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:svrl="http://purl.oclc.org/dsdl/svrl"
    xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="urn:t" version="2.0">
<xsl:template match="*" mode="schematron-select-full-path"><xsl:apply-templates select="." mode="schematron-get-full-path"/></xsl:template>
<xsl:template match="*" mode="schematron-get-full-path">
  <xsl:apply-templates select="parent::*" mode="schematron-get-full-path"/>
  <xsl:text>/</xsl:text>
  <xsl:choose>
    <xsl:when test="namespace-uri()=''"><xsl:value-of select="name()"/></xsl:when>
    <xsl:otherwise><xsl:text>*:</xsl:text><xsl:value-of select="local-name()"/>
      <xsl:text>[namespace-uri()='</xsl:text><xsl:value-of select="namespace-uri()"/><xsl:text>']</xsl:text>
    </xsl:otherwise>
  </xsl:choose>
  <xsl:variable name="preceding" select="count(preceding-sibling::*[local-name()=local-name(current()) and namespace-uri() = namespace-uri(current())])"/>
  <xsl:text>[</xsl:text><xsl:value-of select="1+ $preceding"/><xsl:text>]</xsl:text>
</xsl:template>
<xsl:template match="@*" mode="schematron-get-full-path">
  <xsl:apply-templates select="parent::*" mode="schematron-get-full-path"/>
  <xsl:text>/@</xsl:text><xsl:value-of select="name()"/>
</xsl:template>
<xsl:template match="text()" priority="-1"/>
"""


@dataclasses.dataclass
class Rule:
    context: str
    asserts: list[tuple[str, str]]  # (id, test): fires when the test is false
    lets: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    message: str | None = None  # an xsl:value-of select in the message
    reports: list[tuple[str, str, str | None]] = dataclasses.field(default_factory=list)  # (id, test, flag)
    descend: bool = True  # the rule applies the pattern's templates to its node's attributes and children


def stylesheet(patterns: list[list[Rule]], functions: str = "") -> str:
    """A compiled-schematron stylesheet: one mode per pattern, rules in priority order."""
    out = [HEAD, functions, '<xsl:template match="/"><svrl:schematron-output>']
    out += [f'<xsl:apply-templates select="/" mode="M{i}"/>' for i in range(len(patterns))]
    out.append("</svrl:schematron-output></xsl:template>")
    for i, rules in enumerate(patterns):
        for j, r in enumerate(rules):
            out.append(f'<xsl:template match={quoteattr(r.context)} mode="M{i}" priority="{1000 - j}">')
            out.append(f"<svrl:fired-rule context={quoteattr(r.context)}/>")
            out += [f"<xsl:variable name={quoteattr(n)} select={quoteattr(s)}/>" for n, s in r.lets]
            for rid, test in r.asserts:
                value = f"<xsl:value-of select={quoteattr(r.message)}/>" if r.message else ""
                out.append(
                    f"<xsl:choose><xsl:when test={quoteattr(test)}/><xsl:otherwise>"
                    f"<svrl:failed-assert test={quoteattr(test)}>"
                    f'<xsl:attribute name="id">{escape(rid)}</xsl:attribute>'
                    '<xsl:attribute name="flag">fatal</xsl:attribute>'
                    '<xsl:attribute name="location"><xsl:apply-templates select="." mode="schematron-select-full-path"/>'
                    f"</xsl:attribute><svrl:text>[{escape(rid)}] failed {value}</svrl:text>"
                    "</svrl:failed-assert></xsl:otherwise></xsl:choose>"
                )
            for rid, test, flag in r.reports:  # fires when the test is true
                flagged = f'<xsl:attribute name="flag">{flag}</xsl:attribute>' if flag else ""
                out.append(
                    f"<xsl:if test={quoteattr(test)}><svrl:successful-report test={quoteattr(test)}>"
                    f'<xsl:attribute name="id">{escape(rid)}</xsl:attribute>{flagged}'
                    '<xsl:attribute name="location"><xsl:apply-templates select="." mode="schematron-select-full-path"/>'
                    f"</xsl:attribute><svrl:text>[{escape(rid)}] reported</svrl:text></svrl:successful-report></xsl:if>"
                )
            descend = f'<xsl:apply-templates select="@*|*" mode="M{i}"/>' if r.descend else ""
            out.append(f"{descend}</xsl:template>")
        out.append(f'<xsl:template match="text()" mode="M{i}" priority="-1"/>')
        out.append(
            f'<xsl:template match="@*|node()" mode="M{i}" priority="-2">'
            f'<xsl:apply-templates select="@*|*" mode="M{i}"/></xsl:template>'
        )
    out.append("</xsl:stylesheet>")
    return "\n".join(out)
