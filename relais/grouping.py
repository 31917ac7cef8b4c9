"""Group flows into units of scheduling that carry seconds of work each.

Airflow costs ~0.1 s per mapped task under `dag.test()` and a real scheduler
runs only a few mapped tasks per second, so many small files go together and
a big flow goes alone.
"""

from __future__ import annotations

from collections.abc import Sequence

MAX_FLOWS_PER_GROUP = 50
TARGET_BYTES_PER_GROUP = 20 * 1024 * 1024
MAX_GROUPS = 16


def group_flows(flows: Sequence[tuple[str, int]], *, max_flows: int = MAX_FLOWS_PER_GROUP,
                target_bytes: int = TARGET_BYTES_PER_GROUP, max_groups: int = MAX_GROUPS) -> list[list[str]]:
    """Split (flow id, size) pairs, in order, into groups.

    >>> group_flows([("a", 10), ("b", 10), ("c", 10)], max_flows=2)
    [['a', 'b'], ['c']]
    >>> group_flows([("big", 100), ("s", 1)], target_bytes=50)
    [['big'], ['s']]
    >>> group_flows([])
    []
    """
    groups: list[list[str]] = []
    size = 0
    for flow_id, flow_size in flows:
        if not groups or len(groups[-1]) >= max_flows or (groups[-1] and size + flow_size > target_bytes):
            groups.append([])
            size = 0
        groups[-1].append(flow_id)
        size += flow_size
    while len(groups) > max_groups:  # too many small groups: merge neighbours
        merged = [a + b for a, b in zip(groups[::2], groups[1::2])]
        if len(groups) % 2:
            merged.append(groups[-1])
        groups = merged
    return groups
