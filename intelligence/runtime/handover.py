"""Series move between replicas with their model state, through the checkpoints of one shared directory.

Every shard checkpoints to ``bank-shard<N>.pkl`` in the same directory; each file's header
lists its series with their last learnt timestamp and the split it was written under (see
:mod:`models.checkpoint`). When the fleet's size changes, the replicas restart with the new
shard count (the StatefulSet's pods get it from their template); while that rolls out, the
replicas still running the old count follow the count in force at run time (see
:mod:`~intelligence.storage.fleet_members` and :class:`Handover`). Either way:

- **adopt** (at start, and at run time when the split this replica follows changes): a
  replica restores its own checkpoint, then reads the header of every
  other checkpoint; for each series it now owns, the newest state wins, wherever it is (its own
  file, the file of the shard that owned it, or the file of a shard that is gone), and is
  taken over with everything it learnt. The history backfill that follows (at start) or the
  engine's catch-up (at run time, ``recollect``) then replays from Prometheus the samples the
  state has not seen (since the checkpoint), so the series goes on as if it had never moved.
- **release** (at every checkpoint while some remain): a series this replica holds but no
  longer owns is not modelled any more, but it stays in its bank, and so in its checkpoints,
  until the checkpoint of its new owner lists it at least as far. Only then is it dropped, so a
  series never depends on a file that may be overwritten before its new owner read it.

A checkpoint made by other model kinds or params is skipped with a warning (its series then
start from what this replica has, or cold). A file of a shard that left stays in the directory;
its states are older than their new owners' once those have checkpointed, so it is never
adopted from again, and it can be deleted then.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from intelligence.runtime.ownership import Ownership, owner
from intelligence.vocabulary import SeriesKey
from models import checkpoint
from models.bank import ModelBank, progress_of

log = logging.getLogger(__name__)

PATTERN = "bank-shard*.pkl"


@dataclass(frozen=True, slots=True)
class Peer:
    """Another checkpoint of the directory, by its header."""

    path: Path
    header: checkpoint.Header

    @property
    def shard(self) -> int | None:
        found = self.header.meta.get("shard")
        return int(found) if found is not None else None

    @property
    def shards(self) -> int | None:
        found = self.header.meta.get("shards")
        return int(found) if found is not None else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat() if math.isfinite(ts) else "never"


def _clusters(keys: Iterable[SeriesKey]) -> str:
    return ", ".join(sorted({k.cluster for k in keys}))


def peers(directory: Path, own: Path, signature: dict[str, Any] | None = None) -> list[Peer]:
    """The other checkpoints of ``directory`` whose header can be read (and, if given, of this signature)."""
    found = []
    for path in sorted(directory.glob(PATTERN)):
        if path.resolve() == own.resolve():
            continue
        try:
            header = checkpoint.read_header(path)
        except checkpoint.CheckpointError as exc:
            log.warning("checkpoint %s skipped: %s", path, exc)
            continue
        if signature is not None and header.signature != signature:
            log.warning(
                "checkpoint %s skipped: made by other model kinds or params (%s); its series start from what this "
                "replica has",
                path,
                header.signature,
            )
            continue
        found.append(Peer(path, header))
    return found


def _index(peer: Peer) -> dict[SeriesKey, tuple[float, int]]:
    if peer.header.series is not None:
        return peer.header.series
    return progress_of(checkpoint.read(peer.path)[1])  # format 2: no index, read the whole file


def adopt(
    bank: ModelBank, ownership: Ownership, directory: Path, own: Path, signature: dict[str, Any]
) -> dict[Path, int]:
    """Take over, from the other checkpoints of ``directory``, the newest state of every series this replica owns
    where it is newer than what ``bank`` holds. Returns how many series came from each file."""
    mine = bank.progress()
    best: dict[SeriesKey, tuple[float, Path]] = {}
    for peer in peers(directory, own, signature):
        for key, (last, _) in _index(peer).items():
            if not ownership.owns(key):
                continue
            newest = best.get(key, (mine.get(key, (-math.inf, 0))[0], own))[0]
            if last > newest:
                best[key] = (last, peer.path)
    by_file: dict[Path, list[SeriesKey]] = defaultdict(list)
    for key, (_, path) in best.items():
        by_file[path].append(key)
    taken: dict[Path, int] = {}
    for path, keys in sorted(by_file.items()):
        try:
            header, snapshot = checkpoint.read(path)
        except checkpoint.CheckpointError as exc:
            log.warning("%s: cannot adopt from %s: %s", ownership, path, exc)
            continue
        source = ModelBank(bank.factory, interval=bank.interval, **snapshot)
        taken[path] = bank.take(source, keys)
        newest = max(best[k][0] for k in keys)
        log.info(
            "%s adopted %d series (clusters %s) from %s (shard %s of %s), learnt up to %s",
            ownership,
            taken[path],
            _clusters(keys),
            path.name,
            header.meta.get("shard", "?"),
            header.meta.get("shards", "?"),
            _iso(newest),
        )
    return taken


def outgoing(bank: ModelBank, ownership: Ownership) -> set[SeriesKey]:
    """The series ``bank`` holds that another shard owns now."""
    return {key for key in bank.series_keys() if not ownership.owns(key)}


def release(
    bank: ModelBank,
    held: set[SeriesKey],
    shards: int,
    directory: Path,
    own: Path,
    absent: frozenset[int] = frozenset(),
) -> set[SeriesKey]:
    """Drop from ``bank`` the held series whose owner in a fleet of ``shards`` (the count in force, while the
    ``absent`` shards are gone) has checkpointed them at least as far; returns those still held."""
    if not held:
        return held
    progress = bank.progress()
    handed: dict[int, list[SeriesKey]] = defaultdict(list)
    left = set(held)
    for peer in peers(directory, own):
        if peer.shards != shards or peer.shard is None or peer.header.series is None:
            continue
        for key in list(left):
            listed = peer.header.series.get(key)
            ours = progress.get(key, (-math.inf, 0))[0]
            if listed is not None and owner(key, shards, absent) == peer.shard and listed[0] >= ours:
                handed[peer.shard].append(key)
                left.discard(key)
    for shard, keys in sorted(handed.items()):
        bank.drop(keys)
        log.info(
            "%s handed %d series (clusters %s) over to shard %d/%d", own.name, len(keys), _clusters(keys), shard, shards
        )
    return left


@dataclass
class Handover:
    """The fleet's shared checkpoint directory as one replica sees it: where its own checkpoint is, and the
    signature its models have now (a promoted champion changes it)."""

    own: Path
    signature: Callable[[], dict[str, Any]]

    @property
    def directory(self) -> Path:
        return self.own.parent

    def adopt(self, bank: ModelBank, ownership: Ownership) -> dict[Path, int]:
        return adopt(bank, ownership, self.directory, self.own, self.signature())

    def release(
        self, bank: ModelBank, held: set[SeriesKey], shards: int, absent: frozenset[int] = frozenset()
    ) -> set[SeriesKey]:
        return release(bank, held, shards, self.directory, self.own, absent)
