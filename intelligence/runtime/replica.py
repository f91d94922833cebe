"""This replica's place in the fleet: the series it owns, whether it leads, and what it shares with the others.

A single replica (the default) owns every series, always leads and shares nothing. A shard
of a sharded fleet owns the series :mod:`~intelligence.runtime.ownership` gives it, leads
when it wins the election of :mod:`~intelligence.storage.leadership`, and shares two things
through the decision database at every step: its part of each cluster's forecast load (the
leader merges them to decide moves and placement scores) and the latest forecast and
anomaly score of its series (any replica answers for any series). It also says at every step
that it is alive and with which fleet size it runs, so that replicas of two sizes never model
the same series (see :mod:`~intelligence.storage.fleet_members`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from intelligence.runtime.ownership import Ownership
from intelligence.storage.fleet_loads import FleetLoads
from intelligence.storage.fleet_members import FleetMembers, Member
from intelligence.storage.latest import SharedLatest
from intelligence.storage.leadership import Leadership, StaticLeadership

log = logging.getLogger(__name__)


@dataclass
class Replica:
    ownership: Ownership = field(default_factory=Ownership)
    leadership: Leadership = field(default_factory=lambda: StaticLeadership(True))
    loads: FleetLoads | None = None  # sharded: every shard's part of the clusters' load, merged by the leader
    latest: SharedLatest | None = None  # sharded: the latest forecast and score of every series
    members: FleetMembers | None = None  # sharded: the live replicas, and the fleet size each runs with
    started_at: float = 0.0  # when this replica started (epoch seconds): the newest count wins a tie

    @property
    def sharded(self) -> bool:
        return self.ownership.sharded

    @property
    def index(self) -> int:
        return self.ownership.index

    @property
    def count(self) -> int:
        return self.ownership.count

    @property
    def member(self) -> Member:
        return Member(self.index, self.count, self.started_at)

    def close(self) -> None:
        if self.members is not None:
            try:
                self.members.leave(self.index)
            except Exception as exc:  # noqa: BLE001 - a database gone at shutdown: the others stop seeing it anyway
                log.warning("%s: could not say it leaves the fleet (%s)", self.ownership, exc)
        self.leadership.close()
