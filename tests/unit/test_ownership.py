"""Ownership of the series by rendezvous hashing: complete, disjoint, balanced, minimal movement (hypothesis)."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.runtime.ownership import Ownership, owner
from intelligence.vocabulary import SeriesKey

SIGNALS = ("cpu", "memory", "requests")
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
workloads = st.tuples(names, names, names)  # cluster, namespace, workload
fleets = st.lists(workloads, min_size=1, max_size=60, unique=True)


def keys_of(fleet: list[tuple[str, str, str]]) -> list[SeriesKey]:
    return [
        SeriesKey.of(cluster, signal, {"namespace": ns, "workload": name})
        for cluster, ns, name in fleet
        for signal in SIGNALS
    ]


@settings(max_examples=60, deadline=None)
@given(fleets)
def test_ownership_is_complete_and_disjoint_for_1_to_16_replicas(fleet):
    keys = keys_of(fleet)
    for count in range(1, 17):
        shares = [{k for k in keys if Ownership(index, count).owns(k)} for index in range(count)]
        assert set().union(*shares) == set(keys)  # nobody's series: none
        assert sum(len(share) for share in shares) == len(keys)  # twice owned: none


@settings(max_examples=60, deadline=None)
@given(fleets)
def test_a_workloads_signals_stay_together(fleet):
    for count in (2, 3, 7, 16):
        for cluster, ns, name in fleet:
            owners = {owner(SeriesKey.of(cluster, s, {"namespace": ns, "workload": name}), count) for s in SIGNALS}
            assert len(owners) == 1


@settings(max_examples=60, deadline=None)
@given(fleets)
def test_one_replica_more_or_less_moves_only_the_series_it_must(fleet):
    keys = keys_of(fleet)
    for count in range(1, 16):
        before = {k: owner(k, count) for k in keys}
        after = {k: owner(k, count + 1) for k in keys}
        moved = {k for k in keys if before[k] != after[k]}
        # growing: only series the new shard wins move, and all of them to it
        assert all(after[k] == count for k in moved)
        assert moved == {k for k in keys if after[k] == count}
        # shrinking back: only the series of the shard that leaves move; each returns where it was
        assert {k for k in keys if after[k] != before[k]} == {k for k in keys if after[k] == count}


def test_any_replica_may_leave_and_only_its_series_move():
    """Rendezvous hashing, unlike a modulo, survives the loss of any shard: its series spread over the others and
    every other series stays (what a StatefulSet's scale-down needs for the last ordinal, and more)."""
    keys = keys_of([(f"c{i % 5}", "ns", f"w{i}") for i in range(2000)])
    for count in (3, 8, 16):
        before = {k: owner(k, count) for k in keys}
        after = {k: owner(k, count - 1) for k in keys}
        assert {k for k in keys if before[k] != after[k]} == {k for k in keys if before[k] == count - 1}


@settings(max_examples=60, deadline=None)
@given(fleets, st.integers(2, 16), st.sets(st.integers(0, 15), max_size=4))
def test_with_shards_absent_the_others_own_everything_and_only_the_absent_ones_series_move(fleet, count, gone):
    keys = keys_of(fleet)
    absent = frozenset(s for s in gone if s < count)
    if len(absent) == count:
        absent -= {min(absent)}
    present = [i for i in range(count) if i not in absent]
    shares = [{k for k in keys if Ownership(i, count, absent - {i}).owns(k)} for i in present]
    assert set().union(*shares) == set(keys)
    assert sum(len(share) for share in shares) == len(keys)
    assert all(owner(k, count, absent) == owner(k, count) for k in keys if owner(k, count) not in absent)
    # the runner-up of the last shard's series is their owner in a fleet one smaller: a scale-down's target
    assert all(owner(k, count, frozenset({count - 1})) == owner(k, count - 1) for k in keys)


@pytest.mark.parametrize(("index", "count", "absent"), [(0, 3, {0}), (0, 3, {3})])
def test_an_ownership_cannot_count_itself_or_a_stranger_absent(index, count, absent):
    with pytest.raises(ValueError, match=f"from shard {index} of {count}"):
        Ownership(index, count, frozenset(absent))


def test_shares_are_even():
    keys = keys_of([(f"c{i % 7}", f"ns{i % 3}", f"w{i}") for i in range(6000)])
    for count in (2, 4, 16):
        sizes = Counter(owner(k, count) for k in keys)
        expected = len(keys) / count
        assert set(sizes) == set(range(count))
        assert all(abs(n - expected) < 0.1 * expected for n in sizes.values()), sizes


def test_owners_are_fixed_answers():
    """Owners come from BLAKE2b, not ``hash()``: the same in every process and release (a change of the hash
    would move every series at an upgrade)."""
    counts = (1, 2, 3, 4, 8, 16)
    key = SeriesKey.of("edge-1", "cpu", {"namespace": "iot", "workload": "ingest"})
    other = SeriesKey.of("cloud-1", "requests", {"namespace": "shop", "workload": "frontend"})
    assert [owner(key, n) for n in counts] == [0, 0, 0, 0, 4, 4]
    assert [owner(other, n) for n in counts] == [0, 1, 1, 1, 1, 1]
