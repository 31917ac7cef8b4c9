"""Group flows into units of scheduling sized by their work: what one Airflow mapped task takes.

Airflow costs ~0.1 s per mapped task under `dag.test()` and a real scheduler
runs only a few mapped tasks per second, so many small files go together; a
group is closed when it reaches `max_flows` flows, about `max_documents`
documents or about `max_bytes` bytes, so a big batch goes alone. When the
pending work is small, it is cut into at least `min_groups` groups (one per
core by default) so that the tasks run side by side instead of on one core.
A flow's document count is estimated from its archived file (a zip's
directory, else its size), before it is processed.

Sized by measured work: given `seconds_per_document` (relais/workrate.py: what processing a
document took lately, a one-invoice file's per-flow overhead included) and `target_seconds` (what
one task should carry), a group takes about `target_seconds / seconds_per_document` documents,
within the hard caps; a flow counts at least one document, so the flow count follows from the work
too (`max_flows` is only a cap).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence

MAX_FLOWS_PER_GROUP = 5000  # a cap only: the measured work decides (`target_seconds`)
MAX_DOCUMENTS_PER_GROUP = 5000
TARGET_SECONDS = 30.0  # the work one task should carry: its start-up (store, pool workers) costs seconds
MAX_BYTES_PER_GROUP = 20 * 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class Work:
    """What a pending flow will cost: its id, its size in bytes and its estimated documents."""

    flow_id: str
    size: int
    documents: int = 1


@dataclasses.dataclass(frozen=True, slots=True)
class Group:
    """The flows one task processes, and a label for Airflow's mapped-task list."""

    flow_ids: list[str]
    documents: int
    size: int

    @property
    def label(self) -> str:
        """
        >>> Group(["CPP0000000007", "CPP0000000009"], 2, 3 * 1024 * 1024).label
        'CPP0000000007 +1: 2 flows, 2 docs, 3.0 MB'
        """
        more = f" +{len(self.flow_ids) - 1}" if len(self.flow_ids) > 1 else ""
        return (
            f"{self.flow_ids[0]}{more}: {len(self.flow_ids)} flow{'s' if len(self.flow_ids) > 1 else ''}, "
            f"{self.documents} docs, {self.size / 1024 / 1024:.1f} MB"
        )

    def as_xcom(self) -> dict[str, object]:
        """What the DAG's intake hands to one mapped task: small (id runs, not id lists) and readable."""
        return {
            "flows": compact_ids(self.flow_ids),
            "label": self.label,
            "documents": self.documents,
            "size": self.size,
        }


_ID = re.compile(r"CPP(\d{10})")


def compact_ids(ids: Sequence[str]) -> list[str]:
    """Flow ids written as runs of consecutive ids (`first..last`), so that an XCom and its log line stay
    short for a group of 50 flows; `expand_ids` gives them back.

    >>> compact_ids(["CPP0000000002", "CPP0000000003", "CPP0000000004", "CPP0000000009", "X1"])
    ['CPP0000000002..CPP0000000004', 'CPP0000000009', 'X1']
    >>> expand_ids(compact_ids(["CPP0000000002", "CPP0000000003", "CPP0000000009", "X1"]))
    ['CPP0000000002', 'CPP0000000003', 'CPP0000000009', 'X1']
    """
    out: list[str] = []
    run: list[int] = []

    def flush() -> None:
        if run:
            out.append(f"CPP{run[0]:010d}" + (f"..CPP{run[-1]:010d}" if len(run) > 1 else ""))
            run.clear()

    for flow_id in ids:
        m = _ID.fullmatch(flow_id)
        if m and run and int(m.group(1)) == run[-1] + 1:
            run.append(int(m.group(1)))
            continue
        flush()
        if m:
            run.append(int(m.group(1)))
        else:
            out.append(flow_id)
    flush()
    return out


def expand_ids(runs: Sequence[str]) -> list[str]:
    ids: list[str] = []
    for item in runs:
        first, sep, last = item.partition("..")
        if sep and _ID.fullmatch(first) and _ID.fullmatch(last):
            ids.extend(f"CPP{n:010d}" for n in range(int(first[3:]), int(last[3:]) + 1))
        else:
            ids.append(item)
    return ids


def group_flows(
    work: Sequence[Work],
    *,
    max_flows: int = MAX_FLOWS_PER_GROUP,
    max_documents: int = MAX_DOCUMENTS_PER_GROUP,
    max_bytes: int = MAX_BYTES_PER_GROUP,
    min_groups: int = 1,
    target_seconds: float | None = None,
    seconds_per_document: float | None = None,
) -> list[Group]:
    """Split pending flows, in order, into groups (with a measured rate: about `target_seconds` of work each).

    >>> [g.flow_ids for g in group_flows([Work("a", 10), Work("b", 10), Work("c", 10)], max_flows=2)]
    [['a', 'b'], ['c']]
    >>> [g.flow_ids for g in group_flows([Work("big", 100), Work("s", 1)], max_bytes=50)]
    [['big'], ['s']]
    >>> [g.documents for g in group_flows([Work(f"z{i}", 9, 500) for i in range(4)], max_documents=500)]
    [500, 500, 500, 500]
    >>> [len(g.flow_ids) for g in group_flows([Work(f"f{i}", 9) for i in range(10)], min_groups=2)]
    [5, 5]
    >>> group_flows([])
    []
    >>> singles = [Work(f"s{i}", 9) for i in range(1000)]
    >>> [g.documents for g in group_flows(singles, target_seconds=30, seconds_per_document=0.1)]
    [300, 300, 300, 100]
    >>> [g.documents for g in group_flows(singles, target_seconds=30, seconds_per_document=0.01)]
    [1000]
    """
    if not work:
        return []
    if target_seconds is not None and seconds_per_document and seconds_per_document > 0:
        max_documents = min(max_documents, max(1, int(target_seconds / seconds_per_document)))
    total_docs = sum(max(1, w.documents) for w in work)
    max_flows = max(1, min(max_flows, math.ceil(len(work) / max(1, min_groups))))
    max_documents = max(1, min(max_documents, math.ceil(total_docs / max(1, min_groups))))
    groups: list[Group] = []
    ids: list[str] = []
    docs = size = 0
    for w in work:
        d = max(1, w.documents)
        if ids and (len(ids) >= max_flows or docs + d > max_documents or size + w.size > max_bytes):
            groups.append(Group(ids, docs, size))
            ids, docs, size = [], 0, 0
        ids.append(w.flow_id)
        docs += d
        size += w.size
    groups.append(Group(ids, docs, size))
    return groups
