"""Presence guards of a rule's asserts: skipping the asserts whose elements are absent.

An assert ``not(P) or ...`` (`validators.native.analysis.guard_keys`) cannot fail
where P's leading names are absent under the rule's context. The rule function
reads the name paths under its context once (``present = D.tags(c, depth)``,
`validators.native.engine.State.tags`, only as deep as its deepest key) and tests
each assert's keys; consecutive guarded asserts share one test of all their keys.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GUARD_RUN = 32  # guarded asserts under one presence test at most


def key_depth(key: str) -> int:
    """How many names a presence key (``{ns}a/{ns}b``) holds: its slashes outside the braces, plus one.

    >>> key_depth("{urn:x/y}a/{urn:x/y}b"), key_depth("a")
    (2, 1)
    """
    depth, inside = 1, False
    for ch in key:
        if ch == "{":
            inside = True
        elif ch == "}":
            inside = False
        elif ch == "/" and not inside:
            depth += 1
    return depth


def skip_absent(lines: list[str], runs: list[tuple[int, int, list[str]]], const: Callable[[Any], str]) -> list[str]:
    """Consecutive guarded asserts (up to `GUARD_RUN`) under one test: none of their keys
    present, none can fail (each alone would give ``ok = True``), so none runs. The
    UBL root rule's 789 "shall not be used" asserts become some 25 set tests."""
    groups: list[list[tuple[int, int, list[str]]]] = []
    for run in runs:
        if groups and groups[-1][-1][1] == run[0] and len(groups[-1]) < GUARD_RUN:
            groups[-1].append(run)
        else:
            groups.append([run])
    out = list(lines)
    for group in reversed(groups):  # from the end: the indexes before stay valid
        if len(group) < 2:
            continue
        first, last = group[0][0], group[-1][1]
        keys = const(frozenset(k for *_, guard in group for k in guard))
        body = ["\n".join("    " + part for part in line.split("\n")) for line in out[first:last]]
        out[first:last] = [f"    if D.record or not present.isdisjoint({keys}):", *body]
    return out
