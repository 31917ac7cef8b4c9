"""Where an expression is compiled (`Scope`), and the face of the compiler its helper modules use.

`validators.native.builtins` and `validators.native.navigation` take the
`validators.native.codegen.Compiler` as an `Emitter`: they never import the
compiler, which imports them.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from validators.native.xpath import Node


@dataclasses.dataclass
class Scope:
    """What names mean where an expression is compiled."""

    vars: dict[str, str]  # XPath variable -> Python expression giving its sequence
    has_context: bool = True
    has_position: bool = False
    has_current: bool = True


class Emitter(Protocol):
    """What the compiler's helper modules call on it."""

    scope: Scope

    def const(self, value: Any) -> str: ...

    def seq(self, node: Node) -> str: ...

    def bool_(self, node: Node) -> str: ...

    def str_(self, node: Node) -> str: ...

    def need_context(self) -> None: ...
