"""Which replica owns which series: rendezvous (highest-random-weight) hashing of a stable key.

The key is the series' cluster and workload labels, without the signal, so that every
signal of a workload (its requests, cpu and memory) is modelled by the same replica. Each
shard ``i`` of ``n`` gets a pseudo-random weight for the key; the highest weight owns it.
So ownership is complete and disjoint for any ``n`` (exactly one argmax), and changing ``n``
moves only what it must: growing to ``n + 1`` moves to the new shard only the series it
wins (about ``1/(n+1)`` of them), shrinking to ``n - 1`` moves only the series of the shard
that left, each to the shard that was its runner-up. ``hash()`` is salted per process, so
the weights come from BLAKE2b of the key and a 64-bit mix of the shard number.

>>> from intelligence.vocabulary import SeriesKey
>>> key = SeriesKey.of("edge-1", "cpu", {"namespace": "iot", "workload": "ingest"})
>>> owner(key, 1), owner(key, 3) == owner(SeriesKey.of("edge-1", "requests", key.label_dict), 3)
(0, True)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from intelligence.vocabulary import SeriesKey

_MASK = (1 << 64) - 1

GroupKey = tuple[str, tuple[tuple[str, str], ...]]  # (cluster, workload labels): what moves together


def group_of(key: SeriesKey) -> GroupKey:
    """The part of a series key that decides its owner: everything but the signal."""
    return key.cluster, key.labels


def _digest(group: GroupKey) -> int:
    cluster, labels = group
    text = "\x00".join([cluster, *(f"{k}\x01{v}" for k, v in labels)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def _mix(x: int) -> int:
    """splitmix64's finaliser: every input bit flips about half of the output bits."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
    return x ^ (x >> 31)


_SHARD_SALT = [_mix(i + 1) for i in range(64)]


def _salt(shard: int) -> int:
    return _SHARD_SALT[shard] if shard < len(_SHARD_SALT) else _mix(shard + 1)


def owner_of_digest(digest: int, shards: int, absent: frozenset[int] = frozenset()) -> int:
    """The shard whose weight for ``digest`` is highest (ties, vanishingly rare, go to the lower shard), among
    those not ``absent``."""
    if shards == 1:
        return 0
    best, best_weight = 0, -1
    for shard in range(shards):
        if shard in absent:
            continue
        weight = _mix(digest ^ _salt(shard))
        if weight > best_weight:
            best, best_weight = shard, weight
    return best


def owner(key: SeriesKey, shards: int, absent: frozenset[int] = frozenset()) -> int:
    """The shard of ``shards`` that owns ``key`` (while the ``absent`` ones are gone: its runner-up among the rest)."""
    return owner_of_digest(_digest(group_of(key)), shards, absent)


@dataclass
class Ownership:
    """This replica's share of the series: shard ``index`` of ``count``, while the shards ``absent`` are gone (their
    series go to their runner-ups; see :mod:`~intelligence.storage.fleet_members`). Owners are cached per workload."""

    index: int = 0
    count: int = 1
    absent: frozenset[int] = frozenset()
    _owners: dict[GroupKey, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} is not one of {self.count}")
        if self.index in self.absent or not self.absent <= frozenset(range(self.count)):
            raise ValueError(f"shards {sorted(self.absent)} cannot be absent from shard {self.index} of {self.count}")

    @property
    def sharded(self) -> bool:
        return self.count > 1

    def owner(self, key: SeriesKey) -> int:
        if self.count == 1:
            return 0
        group = group_of(key)
        found = self._owners.get(group)
        if found is None:
            found = self._owners[group] = owner_of_digest(_digest(group), self.count, self.absent)
        return found

    def owns(self, key: SeriesKey) -> bool:
        return self.count == 1 or self.owner(key) == self.index

    def __str__(self) -> str:
        gone = f" (for absent {', '.join(map(str, sorted(self.absent)))} too)" if self.absent else ""
        return f"shard {self.index}/{self.count}{gone}"
