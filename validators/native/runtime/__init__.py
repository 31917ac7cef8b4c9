"""What generated rule code calls: XPath 2.0 values, atomisation, comparisons, arithmetic and functions.

Values follow the XPath 2.0 data model as the official Saxon run sees an
untyped (not schema-validated) invoice:

- a sequence is a Python list; nodes are lxml elements, `Attr`, `Text` and `Doc`;
- ``xs:untypedAtomic`` (what a node atomises to) is `U`, a ``str`` subclass;
  ``xs:string`` is ``str``, ``xs:boolean`` ``bool``, ``xs:integer`` ``int``,
  ``xs:decimal`` ``Decimal`` (exact; division as Saxon: at least 18 decimals,
  rounded half down), ``xs:double`` ``float``, ``xs:date`` `Date`;
- general comparisons cast untyped operands to the other side's type (to
  ``xs:double`` against a number: ``'abc' > 0`` is a dynamic error, as in
  Saxon); arithmetic casts them to ``xs:double``;
- ``round`` rounds halves towards positive infinity (``round(-2.5)`` is -2);
- ``normalize-space`` and the regex ``\\s`` know only space, tab, CR and LF
  (not the non-breaking space);
- a dynamic error raises `XPathError` with its XPath error code: the
  document's run is aborted, as Saxon's is.

One module per concern: `values` (atomic types, errors), `nodes` (node kinds,
atomisation, names, document order), `axes`, `casts` (also effective boolean
values and strings), `operators` (comparisons, arithmetic), `functions`,
`regex` (the XPath dialect translated to Python's), `support` (predicates,
typed parameters, lazy variables, locations). This package re-exports what
generated code reads as ``R.<name>`` (``R.etree.Element`` included), and what
the engine and the compiler use; the compiled code and its cache depend on
these names only.
"""

from lxml import etree

from validators.native.runtime.axes import (
    ancestors,
    attributes,
    child_nodes,
    children,
    descendant_nodes,
    descendants,
    descendants_named,
    following_nodes,
    matches_test,
    preceding_nodes,
    self_and_descendants,
    siblings,
    text_children,
)
from validators.native.runtime.casts import CASTS, cast, castable, ebv, normalize, str_arg, to_double, to_string
from validators.native.runtime.functions import (
    fn_abs,
    fn_ceiling,
    fn_concat,
    fn_distinct_values,
    fn_floor,
    fn_local_name,
    fn_max,
    fn_min,
    fn_name,
    fn_namespace_uri,
    fn_normalize_space,
    fn_number,
    fn_round,
    fn_string,
    fn_string_join,
    fn_substring,
    fn_substring_after,
    fn_substring_before,
    fn_sum,
    fn_translate,
)
from validators.native.runtime.nodes import (
    Attr,
    Doc,
    Text,
    atomize,
    doc_order,
    is_element,
    is_node,
    parent_of,
    string_value,
)
from validators.native.runtime.operators import arith, gcmp, gcmp_str, negate, vcmp
from validators.native.runtime.regex import UnsupportedRegex, fn_matches, fn_replace, fn_tokenize, regex
from validators.native.runtime.support import (
    Lazy,
    convert_param,
    first_node,
    fn_index,
    full_path,
    position_match,
    set_op,
    t_and,
    t_or,
    to_range,
    value_of,
)
from validators.native.runtime.values import U, XPathError

__all__ = [
    "Attr",
    "CASTS",
    "Doc",
    "Lazy",
    "Text",
    "U",
    "UnsupportedRegex",
    "XPathError",
    "ancestors",
    "arith",
    "atomize",
    "attributes",
    "cast",
    "castable",
    "child_nodes",
    "children",
    "convert_param",
    "descendant_nodes",
    "descendants",
    "descendants_named",
    "doc_order",
    "ebv",
    "etree",
    "first_node",
    "fn_abs",
    "fn_ceiling",
    "fn_concat",
    "fn_distinct_values",
    "fn_floor",
    "fn_index",
    "fn_local_name",
    "fn_matches",
    "fn_max",
    "fn_min",
    "fn_name",
    "fn_namespace_uri",
    "fn_normalize_space",
    "fn_number",
    "fn_replace",
    "fn_round",
    "fn_string",
    "fn_string_join",
    "fn_substring",
    "fn_substring_after",
    "fn_substring_before",
    "fn_sum",
    "fn_tokenize",
    "fn_translate",
    "following_nodes",
    "full_path",
    "gcmp",
    "gcmp_str",
    "is_element",
    "is_node",
    "matches_test",
    "negate",
    "normalize",
    "parent_of",
    "position_match",
    "preceding_nodes",
    "regex",
    "self_and_descendants",
    "set_op",
    "siblings",
    "str_arg",
    "string_value",
    "t_and",
    "t_or",
    "text_children",
    "to_double",
    "to_range",
    "to_string",
    "value_of",
    "vcmp",
]
