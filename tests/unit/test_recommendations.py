import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from intelligence.actuation.actuator import Actuator
from intelligence.decisions.outcomes import Decision, Outcome
from intelligence.decisions.policies import PolicyBook
from intelligence.runtime.specs import policy_spec
from intelligence.settings import PolicySettings
from intelligence.storage import recommendations as recommendations_module
from intelligence.storage.audit import AuditLog
from intelligence.storage.database import open_database
from intelligence.storage.recommendations import Change, RecommendationStore
from intelligence.vocabulary import (
    ActionKind,
    Explanation,
    Lever,
    Mode,
    Recommendation,
    RecommendationStatus,
    WorkloadRef,
)

NOW = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
TARGET = WorkloadRef("edge-1", "iot", "ingest")


def rec(min_scale: int, at: datetime = NOW, kind: ActionKind = ActionKind.SCALE_UP) -> Recommendation:
    return Recommendation(
        kind,
        Lever.KNATIVE_FLOOR,
        TARGET,
        {"min_scale": min_scale},
        at,
        0.8,
        Explanation("rule", f"to {min_scale}"),
        at + timedelta(hours=1),
    )


@pytest.fixture
def store(tmp_path):
    s = RecommendationStore(open_database(f"sqlite:///{tmp_path / 'd.db'}"))
    yield s
    s.database.close()


def test_one_open_recommendation_per_target_revised_in_place_with_its_history(store):
    first, change = store.publish(rec(3))
    assert change is Change.OPENED
    assert store.publish(rec(3, NOW + timedelta(minutes=5))) == (first, Change.REFRESHED)
    assert store.publish(rec(5, NOW + timedelta(minutes=10))) == (first, Change.REVISED)
    assert store.publish(rec(4, NOW + timedelta(minutes=15), ActionKind.SCALE_DOWN)) == (first, Change.REVISED)
    [only] = store.find(status=None)
    assert only.id == first
    assert only.status is RecommendationStatus.OPEN
    assert only.revision == 3
    assert only.recommendation.kind is ActionKind.SCALE_DOWN
    assert only.recommendation.params == {"min_scale": 4}
    assert only.recommendation.created_at == NOW  # when it was opened; updated_at says when it last changed
    assert only.updated_at == NOW + timedelta(minutes=15)
    history = store.history(first)
    assert [(h.revision, h.params, h.at) for h in history] == [
        (1, {"min_scale": 3}, NOW),
        (2, {"min_scale": 5}, NOW + timedelta(minutes=10)),
        (3, {"min_scale": 4}, NOW + timedelta(minutes=15)),
    ]
    assert [e["event"] for e in AuditLog(store.database).entries()] == ["revised", "revised", "recommended"]


def test_a_steps_recommendations_go_in_one_transaction_as_if_one_by_one(store, tmp_path, monkeypatch):
    other = WorkloadRef("edge-1", "iot", "vision")
    later = [rec(5, NOW + timedelta(minutes=m)) for m in (1, 2)]
    batch = [rec(3), replace(rec(2), target=other), *later]
    one_by_one = RecommendationStore(open_database(f"sqlite:///{tmp_path / 'one.db'}"))
    sequential = [one_by_one.publish(r)[1] for r in batch]
    assert [change for _, change in store.publish_many(batch)] == sequential
    assert sequential == [Change.OPENED, Change.OPENED, Change.REVISED, Change.REFRESHED]
    assert [(s.recommendation.target, s.revision) for s in store.find(status=None)] == [
        (s.recommendation.target, s.revision) for s in one_by_one.find(status=None)
    ]
    one_by_one.database.close()
    # all or none: when the database refuses one, the step's others are not written either
    written: list[int] = []

    def refusing(conn, rec_id, now, detail):
        written.append(rec_id)
        if len(written) == 2:
            raise RuntimeError("database refused")

    monkeypatch.setattr(recommendations_module, "write_recommendation_event", refusing)
    news = [replace(rec(1), target=WorkloadRef("edge-1", "iot", name)) for name in ("a", "b")]
    with pytest.raises(RuntimeError, match="refused"):
        store.publish_many(news)
    assert {s.recommendation.target.name for s in store.find(status=None)} == {"ingest", "vision"}


def test_a_steps_batch_writes_what_one_by_one_writes(store, tmp_path):
    """Steps of distinct targets at one time go the bulk way (expire, look up and refresh all at once); the rows,
    revisions, audit and events are those of publishing them one by one."""
    rng = random.Random(7)
    one_by_one = RecommendationStore(open_database(f"sqlite:///{tmp_path / 'one.db'}"))
    targets = [WorkloadRef("edge-1", "iot", f"w{i}") for i in range(6)]
    for step in range(30):
        at = NOW + timedelta(minutes=20 * step)  # past a validity now and then: some expire, others open again
        chosen = rng.sample(targets, rng.randint(1, len(targets)))
        batch = [replace(rec(rng.choice([1, 2, 3]), at), target=t) for t in chosen]
        assert [c for _, c in store.publish_many(batch)] == [one_by_one.publish(r)[1] for r in batch]

    def rows(s: RecommendationStore) -> list[tuple]:
        return [
            (r.id, r.status, r.revision, r.recommendation.params, r.updated_at, [h.params for h in s.history(r.id)])
            for r in s.find(status=None, limit=1000)
        ]

    assert rows(store) == rows(one_by_one)
    audited = [[e["event"] for e in AuditLog(s.database).entries(limit=10_000)] for s in (store, one_by_one)]
    assert audited[0] == audited[1]
    assert {"recommended", "revised"} <= set(audited[0])
    one_by_one.database.close()


def test_a_closed_recommendation_is_not_revised_a_new_one_opens(store):
    first, _ = store.publish(rec(3))
    store.set_status(first, RecommendationStatus.ENACTED, NOW + timedelta(minutes=1))
    second, change = store.publish(rec(5, NOW + timedelta(minutes=10)))
    assert (second != first, change) == (True, Change.OPENED)
    assert store.get(first).recommendation.params == {"min_scale": 3}


def test_expiry_and_persistence_across_restarts(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    store = RecommendationStore(open_database(url))
    store.publish(rec(3))
    store.database.close()
    reopened = RecommendationStore(open_database(url))
    assert len(reopened.find(status=RecommendationStatus.OPEN)) == 1
    assert reopened.expire(NOW + timedelta(hours=2)) == 1
    assert reopened.find(status=RecommendationStatus.OPEN) == []
    assert reopened.find(status=RecommendationStatus.EXPIRED)[0].recommendation.params == {"min_scale": 3}
    reopened.database.close()


def book(mode: Mode) -> PolicyBook:
    return PolicyBook(policy_spec(PolicySettings(mode=mode)))


def test_actuator_restores_what_it_published_and_needs_adapters_to_enact(store):
    actuator = Actuator(store.database, book(Mode.RECOMMEND), timedelta(hours=1))
    report = actuator.handle([Decision(TARGET, Outcome.RECOMMEND, rec(4).explanation, rec(4))], NOW)
    assert report.new == 1
    assert actuator.published[(TARGET, Lever.KNATIVE_FLOOR)].value == 4
    again = Actuator(store.database, book(Mode.RECOMMEND), timedelta(hours=1))
    assert again.published[(TARGET, Lever.KNATIVE_FLOOR)].value == 4
    with pytest.raises(ValueError, match="needs the Kubernetes adapters"):
        Actuator(store.database, book(Mode.ENACT), timedelta(hours=1))


def test_observe_mode_records_only_the_audit_trail(store):
    actuator = Actuator(store.database, book(Mode.OBSERVE), timedelta(hours=1))
    actuator.handle([Decision(TARGET, Outcome.RECOMMEND, rec(4).explanation, rec(4))], NOW)
    assert store.find() == []
    assert AuditLog(store.database).entries()[0]["event"] == "observed"
