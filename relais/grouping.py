"""Group flows into units of scheduling that carry seconds of work each.

Airflow costs ~0.1 s per mapped task under `dag.test()` and a real scheduler
runs only a few mapped tasks per second, so many small files go together and
a big flow goes alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # this module stays import-light: the Airflow DAG file imports it at parse time
    from flows.pipeline import Runtime

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


def pending_groups(rt: "Runtime") -> list[list[str]]:
    """The flows waiting for processing, oldest first, in groups of at most
    `settings.max_flows_per_group` (env RELAIS_MAX_FLOWS_PER_GROUP): what the DAG maps over."""
    from relais.runner import pending_flow_ids

    sizes = []
    for flow_id in pending_flow_ids(rt):
        flow = rt.store.get_flow(flow_id)
        sizes.append((flow_id, flow.size if flow else 0))
    return group_flows(sizes, max_flows=max(1, rt.settings.max_flows_per_group))
