"""The store's batched lookups give, for each flow or file, exactly what the one-at-a-time lookup gives:
`find_originals` (the duplicate-content rule, RLS-F05's original) against `find_original`, and
`find_latest_flows` (the pickup's idempotence key) against `find_flow(..., latest=True)`, on SQLite and
PostgreSQL, over random stores."""

from __future__ import annotations

import dataclasses
import random

import pytest

from flows.domain.model import Channel, Flow
from flows.store import Store


def _random_store(store: Store, rng: random.Random, n: int) -> list[Flow]:
    """`n` flows over 2 partners, 3 contents and 2 names; some in qualification, some already duplicates."""
    ids = store.next_flow_ids(n)
    flows: list[Flow] = []
    for fid in ids:
        sha = rng.choice(["aa", "bb", "cc"]) * 32
        earlier = [f.id for f in flows if f.sha256 == sha]
        flows.append(
            Flow(
                id=fid,
                partner=rng.choice(["op-a", "op-b"]),
                channel=Channel.FOLDER,
                original_name=rng.choice(["lot.zip", "f.xml"]),
                size=rng.choice([10, 20]),
                sha256=sha,
                qualification=rng.random() < 0.3,
                duplicate_of=rng.choice(earlier) if earlier and rng.random() < 0.3 else None,
            )
        )
    store.create_flows(flows)
    return flows


@pytest.mark.parametrize("seed", range(6))
def test_find_originals_is_find_original_for_each_flow(store, seed):
    rng = random.Random(seed)
    flows = _random_store(store, rng, 40)
    asked = [
        dataclasses.replace(f, qualification=rng.random() < 0.5)  # the partner's mode when claimed
        for f in rng.sample(flows, 15)
    ]
    expected = {f.id: store.find_original(f) for f in asked}
    assert store.find_originals(asked) == expected
    assert any(expected.values()) and not all(expected.values())  # the scenario has both outcomes
    assert store.find_originals([]) == {}


@pytest.mark.parametrize("seed", range(4))
def test_find_latest_flows_is_find_flow_latest_for_each_key(store, seed):
    rng = random.Random(seed)
    flows = _random_store(store, rng, 30)
    keys = {(f.partner, f.original_name, f.size, f.sha256) for f in rng.sample(flows, 10)}
    keys |= {("op-a", "absent.xml", 10, "aa" * 32), ("op-c", "lot.zip", 10, "bb" * 32)}  # no such file
    expected = {k: store.find_flow(*k, latest=True) for k in keys}
    got = store.find_latest_flows(keys)
    assert {k: f.id for k, f in got.items()} == {k: f.id for k, f in expected.items() if f is not None}
    assert len(got) < len(keys)
    assert store.find_latest_flows([]) == {}
