"""Each replica's part of every cluster's forecast load, in the decision database, for the leader.

A sharded replica models only some workloads of each cluster, so none sees a cluster's whole
load. Every replica writes its part (additive: see
:class:`~intelligence.decisions.rescheduling.LoadPart`) at every step, one row per cluster it
pulls; the leader reads the fresh parts of every shard and merges them. A part says the fleet
size its writer runs with, so that during a resize the leader never adds the parts of two
different splits of the series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import sqlalchemy as sa

from intelligence.decisions.rescheduling import LoadPart
from intelligence.storage.database import Database
from intelligence.storage.schema import fleet_load_parts
from intelligence.vocabulary import WorkloadRef


@dataclass(frozen=True, slots=True)
class FleetLoad:
    parts: list[LoadPart]
    reporting: frozenset[int]  # shards whose parts are fresh


class FleetLoads:
    def __init__(self, database: Database) -> None:
        self.engine = database.engine

    def write(
        self, shard: int, shards: int, parts: Mapping[str, LoadPart], clusters: Iterable[str], now: float
    ) -> None:
        """Replace this shard's parts: one row per cluster in ``clusters`` (an empty part where it models nothing)."""
        rows = []
        for name in sorted(set(clusters) | set(parts)):
            part = parts.get(name) or LoadPart(name)
            rows.append(
                {
                    "shard": shard,
                    "cluster": name,
                    "shard_count": shards,
                    "written_at": now,
                    "steps": list(part.steps),
                    "workloads": [[ref.namespace, ref.name, peak] for ref, peak in sorted(part.workloads.items())],
                    "scored": part.scored,
                    "anomalous": part.anomalous,
                }
            )
        with self.engine.begin() as conn:
            conn.execute(fleet_load_parts.delete().where(fleet_load_parts.c.shard == shard))
            if rows:
                conn.execute(fleet_load_parts.insert(), rows)

    def read(self, shards: int, since: float) -> FleetLoad:
        """The parts written since ``since`` by shards of a fleet of ``shards`` replicas."""
        query = (
            sa.select(fleet_load_parts)
            .where(fleet_load_parts.c.shard_count == shards)
            .where(fleet_load_parts.c.shard < shards)
            .where(fleet_load_parts.c.written_at >= since)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        parts = [
            LoadPart(
                r["cluster"],
                tuple(float(v) for v in r["steps"]),
                {WorkloadRef(r["cluster"], ns, name): float(peak) for ns, name, peak in r["workloads"]},
                int(r["scored"]),
                int(r["anomalous"]),
            )
            for r in rows
        ]
        return FleetLoad(parts, frozenset(int(r["shard"]) for r in rows))
