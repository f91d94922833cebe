"""What the shards of a fleet share through the real PostgreSQL of tests/stack.py: the leader's election, each
shard's part of the clusters' load, the latest forecast and score of every series."""

from __future__ import annotations

import logging
import math

import pytest
import sqlalchemy as sa

from intelligence.decisions.rescheduling import LoadPart, merge_parts
from intelligence.storage.database import open_database
from intelligence.storage.fleet_loads import FleetLoads
from intelligence.storage.fleet_members import FleetMembers, Member, judge
from intelligence.storage.latest import SharedLatest
from intelligence.storage.leadership import AdvisoryLockLeadership, StaticLeadership, leadership_for
from intelligence.vocabulary import AnomalyReason, AnomalyScore, Forecast, SeriesKey, WorkloadRef

pytestmark = pytest.mark.integration

KEY = SeriesKey.of("edge-1", "cpu", {"namespace": "iot", "workload": "ingest"})
OTHER = SeriesKey.of("cloud-1", "cpu", {"namespace": "shop", "workload": "front"})


def test_one_replica_leads_and_hands_over_when_it_closes(postgres_db):
    database = open_database(postgres_db)
    first, second = AdvisoryLockLeadership(database), AdvisoryLockLeadership(database)
    try:
        assert first.check()
        assert first.check()  # it keeps what it holds
        assert not second.check()
        first.close()  # a leader that stops hands over at once
        assert second.check()
        assert not AdvisoryLockLeadership(database).check()
    finally:
        first.close()
        second.close()
        database.close()


def test_a_leader_whose_session_is_gone_leads_no_more(postgres_db, caplog):
    """A crash or a cut connection ends the session, and the lock with it; the old leader notices at its next check."""
    database = open_database(postgres_db)
    first, second = AdvisoryLockLeadership(database), AdvisoryLockLeadership(database)
    try:
        assert first.check()
        with database.engine.connect() as conn:
            killed = conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = :key"),
                {"key": first.key & 0xFFFFFFFF},
            ).all()
        assert killed == [(True,)]
        assert second.check()
        with caplog.at_level(logging.WARNING):
            assert not first.check()
        assert "leader lock session" in caplog.text
    finally:
        first.close()
        second.close()
        database.close()


def test_without_advisory_locks_shard_0_leads(tmp_path, postgres_db):
    sqlite = open_database(f"sqlite:///{tmp_path / 'd.db'}")
    postgres = open_database(postgres_db)
    try:
        assert isinstance(leadership_for(sqlite, 0, sharded=True), StaticLeadership)
        assert leadership_for(sqlite, 0, sharded=True).check()
        assert not leadership_for(sqlite, 1, sharded=True).check()
        assert leadership_for(postgres, 3, sharded=False).check()  # a single replica leads
        assert isinstance(leadership_for(postgres, 1, sharded=True), AdvisoryLockLeadership)
    finally:
        sqlite.close()
        postgres.close()


def test_the_leader_merges_the_fresh_parts_of_the_current_fleet(postgres_db):
    database = open_database(postgres_db)
    loads = FleetLoads(database)
    ingest, front = WorkloadRef("edge-1", "iot", "ingest"), WorkloadRef("edge-1", "shop", "front")
    try:
        loads.write(0, 2, {"edge-1": LoadPart("edge-1", (1.0, 2.0), {ingest: 2.0}, 1, 0)}, ["edge-1", "fog-1"], 100.0)
        loads.write(1, 2, {"edge-1": LoadPart("edge-1", (0.5, 0.5), {front: 0.5}, 1, 1)}, ["edge-1", "fog-1"], 100.0)
        loads.write(2, 3, {"edge-1": LoadPart("edge-1", (9.0, 9.0), {}, 0, 0)}, ["edge-1"], 100.0)  # another split
        fleet = loads.read(2, since=40.0)
        assert fleet.reporting == {0, 1}
        merged = merge_parts(fleet.parts)
        assert merged["edge-1"].steps == (1.5, 2.5)
        assert dict(merged["edge-1"].workloads) == {ingest: 2.0, front: 0.5}
        assert (merged["edge-1"].scored, merged["edge-1"].anomalous) == (2, 1)
        assert merged["fog-1"].steps == ()  # a cluster a shard pulls but models nothing of: an empty part
        loads.write(1, 2, {}, ["edge-1"], 200.0)  # shard 1 replaces its rows
        assert loads.read(2, since=140.0).reporting == {1}  # shard 0's rows are stale now
    finally:
        database.close()


def forecast(key: SeriesKey, origin: float) -> Forecast:
    return Forecast(key, origin, 60.0, (1.0, math.nan), {0.9: (2.0, 3.0)}, "seasonal_ar", (1.5, 2.5), 0.8)


def score(key: SeriesKey, at: float) -> AnomalyScore:
    return AnomalyScore(key, at, 0.7, AnomalyReason("record_ratio", math.nan, 1.0, 0.5, 1.5, "spike"))


@pytest.fixture(params=["postgresql", "sqlite"])
def shared_db(request, tmp_path) -> str:
    """Both databases a fleet's rows can live in (PostgreSQL writes by COPY, SQLite by executemany)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'decisions.db'}"
    return str(request.getfixturevalue("postgres_db"))


# Label values are any Unicode (Prometheus'): COPY's own separators and escapes among them
ODD = SeriesKey.of("edge-2", "cpu", {"namespace": "tab\tnew\nline", "workload": "a\tb\nc\\d\"e 'f' é 流"})


def test_any_replica_reads_what_the_owners_wrote(shared_db):
    database = open_database(shared_db)
    writer, reader = SharedLatest(database), SharedLatest(database)
    try:
        assert writer.put(0, [forecast(KEY, 60.0)], [score(KEY, 60.0)], 60.0) == 1
        assert writer.put(1, [forecast(OTHER, 60.0)], [], 60.0) == 1
        writer.put(0, [forecast(KEY, 120.0)], [], 120.0)  # a new forecast, no new score: the score stays
        forecasts = {fc.key: (shard, fc) for shard, fc in reader.forecasts()}
        assert set(forecasts) == {KEY, OTHER}
        shard, latest = forecasts[KEY]
        assert shard == 0
        assert latest.origin == 120.0
        assert latest.point[0] == 1.0
        assert math.isnan(latest.point[1])  # NaN is kept through JSON (as null)
        assert latest.quantiles == {0.9: (2.0, 3.0)}
        [(shard, kept)] = reader.scores()
        assert (shard, kept.key, kept.timestamp, kept.score) == (0, KEY, 60.0, 0.7)
        assert [fc.key for _, fc in reader.forecasts(cluster="cloud-1")] == [OTHER]
        reader.drop([OTHER])
        assert [fc.key for _, fc in reader.forecasts()] == [KEY]
        infinite = Forecast(ODD, 60.0, 60.0, (math.inf, -math.inf), {0.9: (2.0, math.nan)}, "m", (), math.nan)
        writer.put(2, [infinite], [score(ODD, 60.0)], 60.0)
        [(shard, odd)] = reader.forecasts(cluster="edge-2")
        assert (shard, odd.key, odd.key.label_dict) == (2, ODD, ODD.label_dict)
        assert all(math.isnan(v) for v in odd.point)  # not finite: written as null, read back as NaN
        assert odd.last is None or math.isnan(odd.last)
    finally:
        database.close()


def test_the_live_members_say_which_fleet_size_is_in_force(postgres_db):
    database = open_database(postgres_db)
    members = FleetMembers(database)
    try:
        members.beat(Member(0, 3, 10.0), now=100.0)
        members.beat(Member(1, 3, 12.0), now=100.0)
        members.beat(Member(2, 3, 11.0), now=40.0)  # not seen since: dead, or gone without a word
        members.beat(Member(1, 2, 90.0), now=110.0)  # shard 1 restarted with another count: its row is replaced
        live = members.live(since=70.0)
        assert sorted(live, key=lambda m: m.shard) == [Member(0, 3, 10.0), Member(1, 2, 90.0)]
        verdict = judge(live, Member(0, 3, 10.0))
        assert (verdict.count, verdict.out_of_step, verdict.describe()) == (2, True, "shard 1 runs 2; shard 0 runs 3")
        members.leave(1)
        assert members.live(since=70.0) == [Member(0, 3, 10.0)]
        assert not judge(members.live(since=70.0), Member(0, 3, 10.0)).mixed
    finally:
        database.close()
