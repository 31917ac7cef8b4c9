"""The native rule engine: EN 16931, Factur-X and BR-FR schematron compiled to Python.

`NativeRunner` (`validators.native.engine`) runs a rule set with the contract of
`validators.schematron.Runner`; `validators.native.stylesheet` reads a compiled
schematron XSLT, `validators.native.xpath` parses its XPath 2.0,
`validators.native.codegen` turns it into Python over `validators.native.runtime`
(with `builtins`, `navigation` and the static `analysis` beside it).
"""

from validators.native.engine import NativeRunner

__all__ = ["NativeRunner"]
