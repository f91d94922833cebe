"""The outbox: events commit with their change or not at all; readers are held at young gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from intelligence.runtime.events import EventPump
from intelligence.runtime.webhooks import Response, WebhookDeliverer, WebhookSpec, sign, verify
from intelligence.storage.database import open_database
from intelligence.storage.ledger import ActionLedger, ActionState
from intelligence.storage.outbox import (
    ACTION_ENACTED,
    ANOMALY_DETECTED,
    CLUSTER_HEALTH_CHANGED,
    RECOMMENDATION_CHANGED,
    RECOMMENDATION_OPENED,
    GapGuard,
    Outbox,
    StoredEvent,
    contiguous,
    write_event,
)
from intelligence.storage.recommendations import RecommendationStore
from intelligence.vocabulary import (
    ActionKind,
    AnomalyReason,
    AnomalyScore,
    ClusterHealth,
    Explanation,
    HealthState,
    Lever,
    Recommendation,
    RecommendationStatus,
    SeriesKey,
    Tier,
    WorkloadRef,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def db(tmp_path):
    database = open_database(f"sqlite:///{tmp_path / 'd.db'}")
    yield database
    database.close()


def _rec(value: int, at: datetime = T0) -> Recommendation:
    return Recommendation(
        kind=ActionKind.SCALE_UP,
        lever=Lever.KNATIVE_FLOOR,
        target=WorkloadRef("edge-1", "iot", "ingest"),
        params={"min_scale": value},
        created_at=at,
        confidence=0.9,
        explanation=Explanation("knative.predictive-min-scale", f"raise to {value}"),
        valid_until=at + timedelta(minutes=10),
    )


def test_a_rolled_back_change_leaves_no_event(db):
    def change_that_fails() -> None:
        with db.engine.begin() as conn:
            write_event(conn, RECOMMENDATION_OPENED, "recommendations/1", {}, T0)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert Outbox(db).after(0) == []


def test_recommendations_report_opened_revised_approved_and_expired(db):
    store = RecommendationStore(db)
    first, _ = store.publish(_rec(3))
    store.publish(_rec(3, T0 + timedelta(minutes=1)))  # the same, refreshed: no event
    revised, _ = store.publish(_rec(5, T0 + timedelta(minutes=2)))  # revised in place: the same recommendation
    assert revised == first
    store.set_status(first, RecommendationStatus.APPROVED, T0 + timedelta(minutes=3), audit={"by": "alice"})
    second, _ = store.publish(_rec(4, T0 + timedelta(minutes=4)))  # the approved one stands; a new one opens
    store.expire(T0 + timedelta(hours=1))
    events = Outbox(db).after(0)
    summary = [(e.type, e.subject, e.data["status"], e.data["revision"]) for e in events]
    assert summary == [
        (RECOMMENDATION_OPENED, f"recommendations/{first}", "open", 1),
        (RECOMMENDATION_CHANGED, f"recommendations/{first}", "open", 2),
        (RECOMMENDATION_CHANGED, f"recommendations/{first}", "approved", 2),
        (RECOMMENDATION_OPENED, f"recommendations/{second}", "open", 1),
        (RECOMMENDATION_CHANGED, f"recommendations/{second}", "expired", 1),
    ]
    assert events[1].data["params"] == {"min_scale": 5}
    approved = events[2]
    assert approved.data["detail"] == {"by": "alice"}
    assert (approved.cluster, approved.namespace) == ("edge-1", "iot")
    assert approved.data["target"] == {"cluster": "edge-1", "namespace": "iot", "workload": "ingest"}


def test_actions_report_enacted_and_failed_but_not_intents(db):
    ledger = ActionLedger(db)
    a = ledger.begin(1, WorkloadRef("c", "n", "w"), Lever.REPLICAS, "scale-up", {"replicas": 3}, 1, T0)
    b = ledger.begin(2, WorkloadRef("c", "n", "w"), Lever.REPLICAS, "scale-up", {"replicas": 4}, 1, T0)
    assert a is not None
    assert b is not None
    ledger.finish(a, ActionState.RETRY, T0, {"error": "503"}, due=timedelta(seconds=30))
    ledger.finish(a, ActionState.ENACTED, T0, {"object": "x"})
    ledger.finish(b, ActionState.ABANDONED, T0, {})
    events = Outbox(db).after(0)
    assert [(e.type, e.subject) for e in events] == [
        (ACTION_ENACTED, f"actions/{a}"),
        ("eu.icos.intelligence.action.failed", f"actions/{b}"),
    ]


def _event(seq: int, recorded: datetime) -> StoredEvent:
    return StoredEvent(seq, f"id{seq}", "t", "s", None, None, T0, recorded, {})


def test_a_reader_waits_at_a_young_gap_and_passes_an_old_one():
    now = T0 + timedelta(minutes=1)
    rows = [_event(1, now), _event(3, now - timedelta(seconds=1)), _event(4, now)]
    assert [e.seq for e in contiguous(0, rows, now, gap_seconds=5)] == [1]
    rows[1] = _event(3, now - timedelta(seconds=10))
    assert [e.seq for e in contiguous(0, rows, now, gap_seconds=5)] == [1, 3, 4]
    clock = [0.0]
    guard = GapGuard(5.0, monotonic=lambda: clock[0])
    rows = [_event(1, now), _event(3, now)]
    assert [e.seq for e in guard.release(0, rows)] == [1]
    clock[0] = 6.0
    assert [e.seq for e in guard.release(0, rows)] == [1, 3]


def test_the_pump_reports_fresh_strong_anomalies_and_health_changes_once(db):
    outbox = Outbox(db)
    pump = EventPump(outbox, min_score=0.9, max_age_seconds=600, units={"cpu": "cores"})
    key = SeriesKey.of("edge-1", "cpu", {"namespace": "iot", "workload": "ingest"})
    now = T0.timestamp()
    scores = [
        AnomalyScore(key, now, 0.95, AnomalyReason("m", 9.0, 2.0, 1.0, 3.0, "high")),
        AnomalyScore(key, now, 0.6, AnomalyReason("m", 4.0)),  # weak
        AnomalyScore(key, now - 7200, 0.99, AnomalyReason("m", 9.0)),  # a backfill's
    ]
    up = [ClusterHealth("edge-1", Tier.EDGE, HealthState.UP)]
    assert pump.after_step(scores, up, now) == 2
    assert pump.after_step([], up, now + 60) == 0
    down = [ClusterHealth("edge-1", Tier.EDGE, HealthState.DOWN, last_error="at http://u:pw@h:1 refused")]
    assert pump.after_step([], down, now + 120) == 1
    events = outbox.after(0)
    assert [e.type for e in events] == [ANOMALY_DETECTED, CLUSTER_HEALTH_CHANGED, CLUSTER_HEALTH_CHANGED]
    assert events[0].data["unit"] == "cores"
    assert events[0].data["score"] == 0.95
    assert events[2].data["previous"] == "up"
    assert "pw" not in events[2].data["last_error"]
    again = EventPump(outbox, 0.9, 600, {})  # a restart knows what was reported
    assert again.after_step([], down, now + 180) == 0


def test_signatures_verify_and_old_ones_are_refused():
    body = b'{"id":"x"}'
    headers = {"webhook-id": "x", "webhook-timestamp": "1000", "webhook-signature": sign("k", "x", 1000, body)}
    assert verify("k", headers, body, now=1100)
    assert not verify("k", headers, body + b" ", now=1100)
    assert not verify("other", headers, body, now=1100)
    assert not verify("k", headers, body, now=2000)  # replayed too late
    assert verify("whsec_" + "aw==", {**headers, "webhook-signature": sign("whsec_aw==", "x", 1000, body)}, body, 1000)


def test_deliveries_keep_order_back_off_and_skip_what_a_subscriber_did_not_ask_for(db, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("k")
    outbox = Outbox(db)
    answers = [Response(500, "HTTP 500"), Response(429, "HTTP 429", retry_after=7.0)]
    posted: list[str] = []

    def post(url, body, headers, timeout):
        posted.append(headers["webhook-id"])
        return answers.pop(0) if answers else Response(200)

    wall = [T0.timestamp()]
    spec = WebhookSpec("s", "http://r", secret, types=("eu.icos.intelligence.anomaly.",), backoff_seconds=2)
    d = WebhookDeliverer(outbox, [spec], "/src", post=post, wall=lambda: wall[0], gap_seconds=0)
    d.run_once()  # subscribes at the newest event: nothing yet
    outbox.write(
        [
            (CLUSTER_HEALTH_CHANGED, "clusters/a", {}, T0, "a", None),
            (ANOMALY_DETECTED, "s1", {}, T0, "a", None),
            (ANOMALY_DETECTED, "s2", {}, T0, "a", None),
        ]
    )
    assert d.run_once() == 0  # 500
    [state] = outbox.subscribers()
    assert state.attempts == 1
    assert state.cursor == 1  # past the health event this subscriber did not ask for
    assert d.run_once() == 0  # not due yet
    wall[0] += 2
    assert d.run_once() == 0  # 429, Retry-After 7
    assert outbox.subscribers()[0].due_at == datetime.fromtimestamp(wall[0] + 7, UTC)
    wall[0] += 7
    assert d.run_once() == 2
    ids = [e.id for e in outbox.after(0)]
    assert posted == [ids[1], ids[1], ids[1], ids[2]]
    assert outbox.subscribers()[0].delivered == 2


def test_history_keeps_actuals_and_past_forecasts_bounded():
    from intelligence.runtime.history import ForecastHistory
    from intelligence.vocabulary import Forecast, SeriesBatch

    key = SeriesKey.of("c", "cpu", {"workload": "w"})
    h = ForecastHistory(step_seconds=60, keep_steps=12, horizons=(1, 3))
    for step in range(30):
        t = 60.0 * step
        h.record(
            [SeriesBatch(key, np.array([t]), np.array([float(step)]))],
            [Forecast(key, t, 60, tuple(float(step + k + 1) for k in range(4)), {0.05: (0,) * 4, 0.95: (99,) * 4})],
        )
    got = h.query(key, 0, 10_000)
    assert got is not None
    assert len(got.timestamps) == 12  # bounded: the last keep_steps times (including forecasts ahead)
    seen = got.timestamps <= 29 * 60
    assert np.array_equal(got.actual[seen], np.arange(30 - seen.sum(), 30, dtype=float))
    one = got.forecasts[1][0][seen]
    assert np.array_equal(one[1:], got.actual[seen][1:])  # the model said "one more" every step: exact
    assert got.accuracy(1).mae == 0.0
    assert got.accuracy(1).coverage == 1.0
    assert h.latest()[key] == (29 * 60.0, 29.0)
    h.drop([key])
    assert h.query(key, 0, 10_000) is None
