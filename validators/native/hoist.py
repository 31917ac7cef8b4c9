"""Constant predicates hoisted out of paths whose other predicates read a variable.

Part of the compiler (`validators.native.codegen`). BR-S-08 and its kin read,
for each VAT rate of a subtotal,
``//cac:InvoiceLine[category = 'S'][percent = $rate]`` and
``../../../cac:InvoiceLine[category = 'S'][percent = $rate]``: the first
predicate does not depend on the rate. ``X[constant]`` is computed once, per
document (start /) or per node reached by the leading ``..`` steps (the
subtotals' ``../../..`` is the same invoice element for every rule: they share
it), and only the variable predicates run per rate. Without positional
predicates, a step's predicates and a filter's mean the same (the step's
nodes are in document order), so the findings do not change.
"""

from __future__ import annotations

from typing import Any

from validators.native.analysis import depends
from validators.native.xpath import Node

PARENT: Node = ("step", "parent", ("kind", "node"), [])


def split_predicates(c: Any, start: Node | None, steps: list[Node]) -> str | None:
    """The code of ``path[constant...][variable...]/rest`` with the constant part hoisted, or None."""
    if c.memo is None:
        return None
    for i, last in enumerate(steps):
        if last[0] != "step" or last[1] not in ("child", "descendant") or len(last[3]) < 2:
            continue
        preds = last[3]
        j = 0
        while j < len(preds) and not depends(preds[j], c.globals, 1):
            j += 1
        if j == 0 or j == len(preds) or any(c._positional(p) for p in preds):
            return None
        step: Node = ("step", last[1], last[2], preds[:j])
        head: Node = ("path", start, [*steps[:i], step])
        if start is not None and not depends(head, c.globals, 0):
            code: str = c.seq(head)  # a document constant
        elif start is None and all(s == PARENT for s in steps[:i]) and c.scope.has_context:
            c.need_context()
            nodes = c._steps("c", True, steps[:i]) if i else "[c]"
            key = c.const(("hoisted", repr(step)))
            code = f"D.nk({key}, {nodes}, lambda n: {c._axis_step(step, 'n')})"
        else:
            return None
        for p in preds[j:]:
            code = c._predicate(code, p)
        return c._steps(code, False, steps[i + 1 :]) if i + 1 < len(steps) else code
    return None
