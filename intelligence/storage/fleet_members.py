"""Which fleet size is in force when replicas disagree: one split of the series at a time, never two.

Every replica of a sharded fleet knows the fleet's size from its own settings
(``engine.shard_count``, passed to every pod by the manifests). A resize rolls out one pod at
a time (a StatefulSet's rolling update; or ``kubectl scale`` alone, or a pod restarted after
the manifests changed but before the others were), so replicas of two counts run side by
side, and the series would be split twice: some modelled (and their floors decided) by two
replicas, some by none.

So every replica says, at every step, which shard it is, which count it runs with and since
when (:class:`FleetMembers`, in the decision database), and :func:`judge` decides from
the live ones which count is in force: the count most live replicas run with (ties: the one
started last). A replica of another count is *out of step*: it follows the count in force
at run time (shard ``i`` of it, taking over that shard's series through the shared
checkpoints, see :mod:`~intelligence.runtime.handover`), or, when the count in force has no
shard ``i``, it stands aside (models, decides and leads nothing; it keeps serving). A series
is thus modelled by one replica of one split, whatever is done to the fleet, and by none
only while its replica restarts; the logs and ``/healthz`` say which replicas to restart.

A shard of the count in force that no live replica runs or follows (its pod is gone: deleted
by ``kubectl scale``, evicted, stuck on a lost node) is *absent*; once it has been absent for
``engine.takeover_after_seconds``, the others take its series over, each series going to its
rendezvous runner-up, until a replica of that shard is back (:attr:`FleetVerdict.absent`).

>>> live = [Member(0, 3, 10.0), Member(1, 3, 11.0), Member(2, 2, 50.0)]
>>> v = judge(live, Member(2, 2, 50.0))
>>> (v.count, v.out_of_step, v.mixed)
(3, True, True)
>>> judge(live, Member(0, 3, 10.0)).out_of_step
False
>>> sorted(judge(live[:2], Member(0, 3, 10.0)).absent)  # no live replica is shard 2
[2]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from intelligence.storage.database import Database
from intelligence.storage.schema import fleet_members


@dataclass(frozen=True, slots=True)
class Member:
    """A live replica: its shard, the fleet size it runs with, and when it started (epoch seconds)."""

    shard: int
    shard_count: int
    started_at: float


@dataclass(frozen=True, slots=True)
class FleetVerdict:
    count: int  # the fleet size in force
    out_of_step: bool  # this replica runs another count: it follows the count in force (or stands aside)
    by_count: dict[int, tuple[int, ...]]  # the live shards of each count

    @property
    def mixed(self) -> bool:
        return len(self.by_count) > 1

    @property
    def absent(self) -> frozenset[int]:
        """The shards of the count in force that no live replica runs or follows (theirs or another count's)."""
        present = {shard for shards in self.by_count.values() for shard in shards}
        return frozenset(range(self.count)) - present

    def describe(self) -> str:
        """E.g. ``shards 0, 1 run 3; shard 2 runs 2`` (the count in force first)."""
        parts = []
        for count, shards in sorted(self.by_count.items(), key=lambda kv: (kv[0] != self.count, kv[0])):
            which = ", ".join(map(str, shards))
            parts.append(f"shard{'s' if len(shards) > 1 else ''} {which} run{'' if len(shards) > 1 else 's'} {count}")
        return "; ".join(parts)


def judge(live: Iterable[Member], me: Member) -> FleetVerdict:
    """The count in force among ``live`` (``me`` counted whether listed or not), and whether ``me`` stands aside."""
    members = {m.shard: m for m in live}
    members[me.shard] = me
    by_count: dict[int, list[int]] = defaultdict(list)
    newest: dict[int, float] = defaultdict(lambda: float("-inf"))
    for m in members.values():
        by_count[m.shard_count].append(m.shard)
        newest[m.shard_count] = max(newest[m.shard_count], m.started_at)
    count = max(by_count, key=lambda c: (len(by_count[c]), newest[c], c))
    return FleetVerdict(count, me.shard_count != count, {c: tuple(sorted(s)) for c, s in by_count.items()})


class FleetMembers:
    def __init__(self, database: Database) -> None:
        self.engine = database.engine

    def beat(self, me: Member, now: float) -> None:
        """Say that ``me`` is alive at ``now`` (and runs with its count, since its start)."""
        row = {"shard": me.shard, "shard_count": me.shard_count, "started_at": me.started_at, "seen_at": now}
        with self.engine.begin() as conn:
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            stmt = insert(fleet_members).values(row)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[fleet_members.c.shard],
                    set_={"shard_count": me.shard_count, "started_at": me.started_at, "seen_at": now},
                )
            )

    def live(self, since: float) -> list[Member]:
        """The members seen at or after ``since``."""
        query = sa.select(fleet_members).where(fleet_members.c.seen_at >= since)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [Member(int(r["shard"]), int(r["shard_count"]), float(r["started_at"])) for r in rows]

    def leave(self, shard: int) -> None:
        """A replica that stops cleanly is no member any more (one that dies is no longer seen)."""
        with self.engine.begin() as conn:
            conn.execute(fleet_members.delete().where(fleet_members.c.shard == shard))
