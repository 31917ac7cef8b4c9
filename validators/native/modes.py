"""A mode's rules indexed for the walk: by element name, attribute name, the document node.

`index` turns a generated module's mode spec (``MODES``, `validators.native.stylesheet`)
into a `Mode`: rules naming their element are found by its tag; wildcard rules
join every tag's list unless their name guard (`validators.native.patterns`) rules
the name out; each tag's list is merged once, by priority then position.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any


@dataclasses.dataclass
class Mode:
    by_tag: dict[str, list[tuple[Any, Callable[..., Any]]]]
    wild: list[tuple[float, int, Any, Callable[..., Any]]]
    attrs: dict[str, list[tuple[Any, Callable[..., Any]]]]
    doc: list[tuple[Any, Callable[..., Any]]]
    cache: dict[str, list[tuple[Any, Callable[..., Any]]]]
    tagged: dict[str, list[tuple[float, int, Any, Callable[..., Any]]]]
    stops: bool = False  # some rule does not descend into its node's subtree

    def candidates(self, tag: str) -> list[tuple[Any, Callable[..., Any]]]:
        found = self.cache.get(tag)
        if found is None:
            local = tag.rpartition("}")[2]
            wild = [w for w in self.wild if w[2][5] is None or w[2][5](local)]  # the name guards (patterns.py)
            merged = sorted(self.tagged.get(tag, []) + wild, key=lambda r: (-r[0], -r[1]))
            found = self.cache[tag] = [(alt, fn) for _, _, alt, fn in merged]
        return found


def index(mode: tuple[list[tuple[float, int, list[Any], Callable[..., Any]]], bool]) -> Mode:
    spec, visit_attributes = mode
    tagged: dict[str, list[tuple[float, int, Any, Callable[..., Any]]]] = {}
    wild: list[tuple[float, int, Any, Callable[..., Any]]] = []
    attrs: dict[str, list[tuple[float, int, Any, Callable[..., Any]]]] = {}
    doc: list[tuple[float, int, Any, Callable[..., Any]]] = []
    for priority, pos, alts, fn in spec:
        for alt in alts:
            kind, key = alt[0], alt[1]
            entry = (priority, pos, alt, fn)
            if kind == "doc":
                doc.append(entry)
            elif kind == "attr":
                attrs.setdefault(key, []).append(entry)
            elif key is None:
                wild.append(entry)
            else:
                tagged.setdefault(key, []).append(entry)

    def ordered(entries: list[tuple[float, int, Any, Callable[..., Any]]]) -> list[tuple[Any, Callable[..., Any]]]:
        return [(alt, fn) for _, _, alt, fn in sorted(entries, key=lambda r: (-r[0], -r[1]))]

    attributes = {k: ordered(v) for k, v in attrs.items()} if visit_attributes else {}
    stops = any(getattr(fn, "stops", False) for *_, fn in spec)
    return Mode({}, wild, attributes, ordered(doc), {}, tagged, stops)
