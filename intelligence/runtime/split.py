"""Which split of the series a replica of a sharded fleet models: its own, the one the fleet runs, or none.

Each step the replica says it is alive (:class:`~intelligence.storage.fleet_members.FleetMembers`)
and judges, from the live replicas, the fleet size in force. It then models shard ``i`` of that
size, ``i`` being its own index, whatever size it was started with (a resize rolls out one pod at
a time); if that size has no shard ``i``, it stands aside (models, decides and leads nothing). A
shard of that size that no live replica has run for ``takeover_after`` seconds is *absent*: its
series go to their rendezvous runner-ups among the others until it is back.

:meth:`FleetSplit.update` returns the change when the split a replica follows changes; moving
the series (adopting, replaying their history, holding and releasing) is the engine's, through
:mod:`~intelligence.runtime.handover`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from intelligence.runtime.ownership import Ownership
from intelligence.runtime.replica import Replica
from intelligence.storage.fleet_members import FleetVerdict, judge
from intelligence.vocabulary import SeriesKey

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SplitChange:
    before: Ownership | None  # what the replica modelled (None: nothing, it stood aside)
    after: Ownership | None  # what it models now (None: nothing, it stands aside)


class FleetSplit:
    def __init__(self, replica: Replica, step_seconds: float, takeover_after: float = 120.0) -> None:
        self.replica = replica
        self.step_seconds = step_seconds
        self.takeover_after = takeover_after  # seconds a shard is absent before the others take its series over
        self.ownership = replica.ownership  # the split followed: its own, or the fleet's in force
        self.aside = False  # the fleet's size in force has no shard of its index: it models nothing
        self.count = replica.ownership.count  # the fleet's size in force
        self.absent: frozenset[int] = frozenset()  # shards of it whose series the others have taken over
        self.note: str | None = None  # why it does not run its own split as started (for /healthz), if so
        self._absent_since: dict[int, float] = {}  # shards of the size in force no live replica runs, since when
        self._seen: str | None = None  # the fleet's make-up when mixed, at the last step (logged when it changes)

    def owns(self, key: SeriesKey) -> bool:
        return not self.aside and self.ownership.owns(key)

    def announce(self, now: float) -> None:
        """Say that this replica is alive (at every step; and before a long first step, so that the others do not
        take its series over while it backfills)."""
        if self.replica.members is not None:
            self.replica.members.beat(self.replica.member, now)

    def update(self, now: float) -> SplitChange | None:
        """Say this replica is alive, judge the fleet, and follow it: the change of split, if any (None when not
        sharded or unchanged)."""
        members = self.replica.members
        if members is None:
            return None
        self.announce(now)
        verdict = judge(members.live(now - 3 * self.step_seconds), self.replica.member)
        self._say(verdict)
        if verdict.count != self.count:  # another size is in force: its shards are other shards
            self._absent_since.clear()
            self.absent = frozenset()
        self.count = verdict.count
        self.absent = self._absent(verdict, now)
        if self.absent:
            gone = f"no live replica runs shard(s) {', '.join(map(str, sorted(self.absent)))} of {verdict.count}"
            self.note = "; ".join(filter(None, (self.note, gone)))
        mine = self.replica.ownership
        if mine.index >= verdict.count:
            if self.aside:
                return None
            self.aside = True
            return SplitChange(self.ownership, None)
        target = Ownership(mine.index, verdict.count, self.absent - {mine.index})
        if not self.aside and (target.count, target.absent) == (self.ownership.count, self.ownership.absent):
            return None
        before = None if self.aside else self.ownership
        self.ownership, self.aside = target, False
        return SplitChange(before, target)

    def _say(self, verdict: FleetVerdict) -> None:
        """Log a change of the fleet's make-up, and keep the note /healthz shows."""
        seen = verdict.describe() if verdict.mixed else None
        mine = self.replica.ownership
        if seen != self._seen:
            if verdict.out_of_step and mine.index >= verdict.count:
                log.error(
                    "%s stands aside: the fleet runs %d shards (%s) and has no shard %d; it models, decides and leads "
                    "nothing until the fleet agrees again (docs/deployment.md#sharding)",
                    mine,
                    verdict.count,
                    seen,
                    mine.index,
                )
            elif verdict.out_of_step:
                log.warning(
                    "%s follows the fleet's %d shards (%s) as shard %d/%d until it is restarted with "
                    "engine.shard_count=%d (docs/deployment.md#sharding)",
                    mine,
                    verdict.count,
                    seen,
                    mine.index,
                    verdict.count,
                    verdict.count,
                )
            elif seen is not None:
                log.warning(
                    "%s: replicas of another fleet size are alive (%s); they follow %d shards until they are "
                    "restarted with it",
                    mine,
                    seen,
                    verdict.count,
                )
            else:
                log.info("%s: every live replica runs %d shards again", mine, mine.count)
            self._seen = seen
        if not verdict.out_of_step:
            self.note = None
        elif mine.index >= verdict.count:
            self.note = f"{mine} stands aside: the fleet runs {verdict.count} shards ({seen})"
        else:
            self.note = (
                f"{mine} follows the fleet's {verdict.count} shards as shard {mine.index}/{verdict.count} "
                f"({seen}): restart it with engine.shard_count={verdict.count}"
            )

    def _absent(self, verdict: FleetVerdict, now: float) -> frozenset[int]:
        """The shards of the size in force absent for ``takeover_after`` seconds (a change is logged)."""
        for shard in set(self._absent_since) - verdict.absent:
            del self._absent_since[shard]
        for shard in verdict.absent:
            self._absent_since.setdefault(shard, now)
        absent = frozenset(s for s, since in self._absent_since.items() if now - since >= self.takeover_after)
        mine = self.replica.ownership
        gone, back = sorted(absent - self.absent), sorted(self.absent - absent)
        if gone:
            log.warning(
                "%s: no live replica runs shard(s) %s of %d for %.0f s or more: the others take their series over "
                "until they are back",
                mine,
                ", ".join(map(str, gone)),
                verdict.count,
                self.takeover_after,
            )
        if back:
            log.info("%s: shard(s) %s of %d are back", mine, ", ".join(map(str, back)), verdict.count)
        return absent
