"""The actuator's modes, its safety envelope, the action ledger and crash recovery (in-memory meta-kernel)."""

from datetime import UTC, datetime, timedelta

import pytest

from intelligence.actuation.actuator import Actuator
from intelligence.actuation.adapters.base import PermanentError, TemporaryError
from intelligence.decisions.outcomes import Decision, Outcome
from intelligence.decisions.policies import PolicyBook
from intelligence.runtime.specs import policy_spec
from intelligence.settings import PolicySettings, SafetyEnvelope
from intelligence.storage.audit import AuditLog
from intelligence.storage.database import open_database
from intelligence.storage.ledger import ActionState
from intelligence.storage.recommendations import RecommendationStore
from intelligence.vocabulary import (
    ActionKind,
    Explanation,
    Lever,
    Mode,
    Recommendation,
    RecommendationStatus,
    WorkloadRef,
)
from tests.fakes.kernel import Crash, MemoryKernel

NOW = datetime(2026, 1, 1, 6, 0, tzinfo=UTC)
INGEST = WorkloadRef("edge-1", "iot", "ingest")
FRONTEND = WorkloadRef("cloud-1", "shop", "frontend")
TTL = timedelta(hours=1)


def decision(min_scale: int, target: WorkloadRef = INGEST, at: datetime = NOW) -> Decision:
    kind = ActionKind.SCALE_UP
    explanation = Explanation("knative.predictive-min-scale", f"min-scale to {min_scale}")
    rec = Recommendation(kind, Lever.KNATIVE_FLOOR, target, {"min_scale": min_scale}, at, 0.9, explanation, at + TTL)
    return Decision(target, Outcome.RECOMMEND, explanation, rec)


def move(destination: str, target: WorkloadRef = INGEST, at: datetime = NOW) -> Decision:
    explanation = Explanation("reschedule.headroom", f"move to {destination}")
    rec = Recommendation(
        ActionKind.REALLOCATION, Lever.PLACEMENT, target, {"cluster": destination}, at, 0.7, explanation, at + TTL
    )
    return Decision(target, Outcome.RECOMMEND, explanation, rec)


def policies(mode: Mode = Mode.ENACT, **envelope: object) -> PolicyBook:
    return PolicyBook(policy_spec(PolicySettings(mode=mode, envelope=SafetyEnvelope(**envelope))))  # type: ignore[arg-type]


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'decisions.db'}"


@pytest.fixture
def store(url):
    s = RecommendationStore(open_database(url))
    yield s
    s.database.close()


def test_enact_mode_enacts_once_and_records_it(store):
    kernel = MemoryKernel()
    actuator = Actuator(store.database, policies(), TTL, kernel)
    report = actuator.handle([decision(4)], NOW)
    assert (report.new, report.enacted) == (1, 1)
    assert kernel.min_scale[("edge-1", "iot", "ingest")] == 4
    assert store.find(status=RecommendationStatus.ENACTED)[0].recommendation.params == {"min_scale": 4}
    assert actuator.ledger.find()[0].state is ActionState.ENACTED
    assert [a.target for a in actuator.ledger.enacted_floors()] == [INGEST]  # a pulse that will be ended
    again = actuator.handle([decision(4, at=NOW + timedelta(minutes=10))], NOW + timedelta(minutes=10))
    assert again.enacted == 0
    assert len(kernel.writes) == 1


def test_recommend_and_observe_never_touch_the_cluster(store):
    kernel = MemoryKernel()
    observe_shop = PolicySettings(mode=Mode.RECOMMEND, overrides=[{"namespace": "shop", "mode": "observe"}])  # type: ignore[list-item]
    book = PolicyBook(policy_spec(observe_shop))
    actuator = Actuator(store.database, book, TTL, kernel)
    actuator.handle([decision(4), decision(6, FRONTEND)], NOW)
    assert kernel.writes == []
    assert [s.recommendation.target for s in store.find()] == [INGEST]  # the observed one is only audited
    assert "observed" in [e["event"] for e in AuditLog(store.database).entries()]


def test_overrides_enact_one_namespace_only(store):
    kernel = MemoryKernel()
    book = PolicyBook(policy_spec(PolicySettings(overrides=[{"namespace": "iot", "mode": "enact"}])))  # type: ignore[list-item]
    actuator = Actuator(store.database, book, TTL, kernel)
    actuator.handle([decision(4), decision(6, FRONTEND)], NOW)
    assert [w for w, _ in kernel.writes] == ["min_scale ('edge-1', 'iot', 'ingest')"]
    assert store.find(status=RecommendationStatus.OPEN)[0].recommendation.target == FRONTEND


def test_approve_mode_waits_for_approval(store):
    kernel = MemoryKernel()
    actuator = Actuator(store.database, policies(Mode.APPROVE), TTL, kernel)
    actuator.handle([decision(4)], NOW)
    assert kernel.writes == []
    rec_id = store.find(status=RecommendationStatus.OPEN)[0].id
    actuator.approve(rec_id, NOW + timedelta(minutes=1), "operator")
    with pytest.raises(ValueError, match="approved, not open"):
        actuator.approve(rec_id, NOW + timedelta(minutes=1), "operator")
    report = actuator.handle([], NOW + timedelta(minutes=2))
    assert report.enacted == 1
    assert store.get(rec_id).status is RecommendationStatus.ENACTED
    with pytest.raises(LookupError):
        actuator.approve(999, NOW, "operator")


def test_approval_is_refused_where_nothing_may_be_enacted(store):
    book = PolicyBook(policy_spec(PolicySettings(overrides=[{"namespace": "iot", "mode": "approve"}])))  # type: ignore[list-item]
    actuator = Actuator(store.database, book, TTL, MemoryKernel())
    actuator.handle([decision(6, FRONTEND)], NOW)
    with pytest.raises(PermissionError, match="recommend mode"):
        actuator.approve(store.find()[0].id, NOW, "operator")


def test_envelope_limits_the_step_and_holds_back_decreases_not_raises(store):
    kernel = MemoryKernel()
    actuator = Actuator(store.database, policies(max_step=3, cooldown_minutes=10, reversal_minutes=60), TTL, kernel)
    actuator.handle([decision(20)], NOW)
    assert kernel.min_scale[("edge-1", "iot", "ingest")] == 4  # 1 + at most 3
    assert store.find()[0].recommendation.params == {"min_scale": 20}  # what was decided stays visible
    soon = NOW + timedelta(minutes=5)
    assert actuator.handle([decision(8, at=soon)], soon).enacted == 1  # a raise is not held by the cooldown
    assert kernel.min_scale[("edge-1", "iot", "ingest")] == 7
    cooling = NOW + timedelta(minutes=8)
    assert actuator.handle([decision(5, at=cooling)], cooling).refused == 1  # down within the cooldown
    turning = NOW + timedelta(minutes=20)
    assert actuator.handle([decision(4, at=turning)], turning).refused == 1  # a reversal within the hour
    assert kernel.min_scale[("edge-1", "iot", "ingest")] == 7
    later = NOW + timedelta(minutes=70)
    assert actuator.handle([decision(4, at=later)], later).enacted == 1
    assert kernel.min_scale[("edge-1", "iot", "ingest")] == 4
    reasons = [e["detail"]["reason"] for e in AuditLog(store.database).entries() if e["event"] == "not-enacted"]
    assert any("cooldown" in r for r in reasons)
    assert any("flapping" in r for r in reasons)


def test_envelope_refuses_out_of_bounds_and_spent_budget(store):
    kernel = MemoryKernel()
    actuator = Actuator(store.database, policies(budget_actions=2, cooldown_minutes=0, reversal_minutes=0), TTL, kernel)
    assert actuator.handle([decision(99)], NOW).refused == 1  # above max_scale 50
    targets = [WorkloadRef("edge-1", "iot", f"w{i}") for i in range(3)]
    report = actuator.handle([decision(3, t) for t in targets], NOW)
    assert (report.enacted, report.refused) == (2, 1)
    reasons = [e["detail"]["reason"] for e in AuditLog(store.database).entries() if e["event"] == "not-enacted"]
    assert any("outside the bounds" in r for r in reasons)
    assert any("budget spent" in r for r in reasons)
    later = NOW + timedelta(minutes=61)
    assert actuator.handle([decision(3, targets[2], later)], later).enacted == 1  # the budget renews


def test_kill_switch_from_the_api_or_a_file(store, tmp_path):
    kernel = MemoryKernel()
    actuator = Actuator(store.database, policies(), TTL, kernel)
    actuator.set_kill_switch(True, "incident 42", NOW)
    assert actuator.handle([decision(4)], NOW).enacted == 0
    actuator.set_kill_switch(False, "resolved", NOW)
    assert actuator.handle([decision(4)], NOW).enacted == 1
    flag = tmp_path / "stop"
    flag.touch()
    book = PolicyBook(policy_spec(PolicySettings(mode=Mode.ENACT, envelope=SafetyEnvelope(kill_switch_file=flag))))
    stopped = Actuator(store.database, book, TTL, kernel)
    assert stopped.handle([decision(8, FRONTEND)], NOW).enacted == 0
    assert kernel.writes == [("min_scale ('edge-1', 'iot', 'ingest')", 4)]


def test_temporary_errors_are_retried_when_due_permanent_ones_are_not(store):
    kernel = MemoryKernel(fail_next=[TemporaryError("ksvc iot/ingest @ edge-1", "busy", 503)])
    actuator = Actuator(store.database, policies(), TTL, kernel)
    assert actuator.handle([decision(4)], NOW).enacted == 0
    assert actuator.ledger.find()[0].state is ActionState.RETRY
    assert actuator.handle([], NOW + timedelta(seconds=10)).enacted == 0  # not due yet
    assert actuator.handle([], NOW + timedelta(seconds=31)).enacted == 1
    assert actuator.ledger.find()[0].attempts == 2
    kernel.fail_next.append(PermanentError("ksvc shop/frontend @ cloud-1", "forbidden", 403))
    report = actuator.handle([decision(6, FRONTEND)], NOW + timedelta(minutes=1))
    assert report.failed == 1
    failed = store.find(status=RecommendationStatus.FAILED)[0]
    assert failed.recommendation.target == FRONTEND
    assert actuator.handle([], NOW + timedelta(hours=1)).enacted == 0


def test_a_crash_after_the_write_is_settled_without_writing_again(url):
    kernel = MemoryKernel(crash_after_write=True)
    store = RecommendationStore(open_database(url))
    with pytest.raises(Crash):
        Actuator(store.database, policies(), TTL, kernel).handle([decision(4)], NOW)
    store.database.close()  # the process died: nothing more from it
    kernel.crash_after_write = False
    restarted = Actuator(open_database(url), policies(), TTL, kernel)
    assert restarted.recover(NOW + timedelta(minutes=1)) == 1
    assert restarted.ledger.find()[0].state is ActionState.ENACTED
    assert restarted.store.find(status=RecommendationStatus.ENACTED)
    restarted.handle([decision(4, at=NOW + timedelta(minutes=2))], NOW + timedelta(minutes=2))
    assert len(kernel.writes) == 1


def test_a_crash_before_the_write_is_abandoned_and_decided_afresh(url):
    kernel = MemoryKernel(crash_before_write=True)
    store = RecommendationStore(open_database(url))
    with pytest.raises(Crash):
        Actuator(store.database, policies(), TTL, kernel).handle([decision(4)], NOW)
    store.database.close()
    kernel.crash_before_write = False
    restarted = Actuator(open_database(url), policies(), TTL, kernel)
    assert restarted.recover(NOW + timedelta(minutes=1)) == 1
    assert restarted.ledger.find()[0].state is ActionState.ABANDONED
    later = NOW + timedelta(minutes=10)
    assert restarted.handle([decision(4, at=later)], later).enacted == 1
    assert len(kernel.writes) == 1


def test_moves_are_enacted_and_remembered_for_the_dwell_time(store):
    kernel = MemoryKernel(placement={("iot", "ingest"): "edge-1"})
    actuator = Actuator(store.database, policies(), TTL, kernel)
    assert actuator.handle([move("fog-1")], NOW).enacted == 1
    assert kernel.placement[("iot", "ingest")] == "fog-1"
    assert actuator.last_moved() == {("iot", "ingest"): NOW}


def test_placement_scores_are_published_only_in_enact_mode_and_when_due(store):
    kernel = MemoryKernel()
    recommending = Actuator(store.database, policies(Mode.RECOMMEND), TTL, kernel)
    recommending.publish_scores({"edge-1": -20, "cloud-1": 80}, "icos-headroom", NOW, timedelta(minutes=15), True)
    assert kernel.scores == []
    assert recommending.scores.scores == {"edge-1": -20, "cloud-1": 80}
    enacting = Actuator(store.database, policies(), TTL, kernel)
    enacting.publish_scores({"edge-1": -20, "cloud-1": 80}, "icos-headroom", NOW, timedelta(minutes=15), True)
    name, scores, valid_until = kernel.scores[0]
    assert (name, [(s.cluster, s.value) for s in scores]) == ("icos-headroom", [("cloud-1", 80), ("edge-1", -20)])
    assert valid_until == NOW + timedelta(minutes=15)
    assert enacting.scores.published_at == NOW


def pulse(min_scale: int, at: datetime, starts_in: float, lasts: float) -> Decision:
    """A floor pulse decided at ``at``: in force ``starts_in`` minutes later, for ``lasts`` minutes."""
    explanation = Explanation("knative.predictive-min-scale", f"min-scale {min_scale} for a peak")
    rec = Recommendation(
        ActionKind.SCALE_UP,
        Lever.KNATIVE_FLOOR,
        INGEST,
        {"min_scale": min_scale},
        at,
        0.9,
        explanation,
        valid_until=at + timedelta(minutes=starts_in + lasts),
        in_force_at=at + timedelta(minutes=starts_in) if starts_in else None,
    )
    return Decision(INGEST, Outcome.RECOMMEND, explanation, rec)


def test_a_pulse_is_written_just_in_time_and_released_at_its_end(store):
    kernel = MemoryKernel()
    actuator = Actuator(store.database, policies(), TTL, kernel)
    assert actuator.handle([pulse(5, NOW, starts_in=4, lasts=6)], NOW).enacted == 0  # not needed yet
    assert actuator.next_due() == NOW + timedelta(minutes=4)
    assert actuator.enact_due(NOW + timedelta(minutes=3)).enacted == 0
    assert actuator.enact_due(NOW + timedelta(minutes=4)).enacted == 1  # the warm-up, at its time
    assert kernel.writes == [("min_scale ('edge-1', 'iot', 'ingest')", 5)]
    assert actuator.next_due() is None
    during = NOW + timedelta(minutes=5)
    assert actuator.handle([], during).released == 0
    ended = NOW + timedelta(minutes=10)
    assert actuator.handle([], ended).released == 1  # back to the policy's min-scale
    assert kernel.writes[-1] == ("min_scale ('edge-1', 'iot', 'ingest')", 1)
    assert actuator.ledger.find()[0].state is ActionState.RELEASED
    assert "released" in [e["event"] for e in AuditLog(store.database).entries()]


def test_a_pulse_raised_while_it_runs_is_not_released_by_the_first(store):
    kernel = MemoryKernel()
    actuator = Actuator(store.database, policies(cooldown_minutes=0), TTL, kernel)
    actuator.handle([pulse(3, NOW, starts_in=0, lasts=10)], NOW)
    later = NOW + timedelta(minutes=5)
    assert actuator.handle([pulse(6, later, starts_in=0, lasts=20)], later).enacted == 1  # a raise: a new action
    first_ended = NOW + timedelta(minutes=11)
    assert actuator.handle([], first_ended).released == 0  # superseded: nothing written
    assert kernel.min_scale[("edge-1", "iot", "ingest")] == 6
    assert actuator.handle([], later + timedelta(minutes=20)).released == 1
    assert kernel.min_scale[("edge-1", "iot", "ingest")] == 1


def test_a_warm_up_no_longer_decided_is_not_written(store):
    kernel = MemoryKernel()
    actuator = Actuator(store.database, policies(), TTL, kernel)
    actuator.handle([pulse(5, NOW, starts_in=4, lasts=6)], NOW)
    rec_id = store.find()[0].id
    actuator.reject(rec_id, NOW + timedelta(minutes=1), "operator", "not now")
    assert actuator.enact_due(NOW + timedelta(minutes=4)).enacted == 0
    assert kernel.writes == []
