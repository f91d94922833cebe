"""The actuator enacting through the real adapters on fake clusters: once, verified, and never twice after a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from intelligence.actuation.actuator import Actuator
from intelligence.actuation.adapters.base import Applied
from intelligence.actuation.adapters.metakernel import KubeMetaKernel
from intelligence.decisions.outcomes import Decision, Outcome
from intelligence.decisions.policies import PolicyBook
from intelligence.runtime.specs import policy_spec
from intelligence.settings import PolicySettings
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
from tests.fakekube import FakeKube
from tests.fakekube.objects import MIN, PA, WORK, manifest_work, shop
from tests.fakes.kernel import Crash

pytestmark = pytest.mark.integration

NOW = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
TTL = timedelta(hours=1)
CHECKOUT = WorkloadRef("edge-a", "shop", "checkout")
BOOK = PolicyBook(policy_spec(PolicySettings(mode=Mode.ENACT)))


def floor(min_scale: int, at: datetime = NOW) -> Decision:
    explanation = Explanation("knative.predictive-min-scale", f"min-scale to {min_scale}")
    rec = Recommendation(
        ActionKind.SCALE_UP, Lever.KNATIVE_FLOOR, CHECKOUT, {"min_scale": min_scale}, at, 0.9, explanation, at + TTL
    )
    return Decision(CHECKOUT, Outcome.RECOMMEND, explanation, rec)


def move(destination: str, at: datetime = NOW) -> Decision:
    explanation = Explanation("reschedule.headroom", f"move to {destination}")
    rec = Recommendation(
        ActionKind.REALLOCATION, Lever.PLACEMENT, CHECKOUT, {"cluster": destination}, at, 0.7, explanation, at + TTL
    )
    return Decision(CHECKOUT, Outcome.RECOMMEND, explanation, rec)


class DiesAfterTheWrite:
    """The real kernel, but the process dies right after the API accepted the write."""

    def __init__(self, kernel: KubeMetaKernel) -> None:
        self.kernel = kernel

    def __getattr__(self, name: str) -> object:
        return getattr(self.kernel, name)

    def set_knative_scale(self, *args: object, **kwargs: object) -> Applied:
        self.kernel.set_knative_scale(*args, **kwargs)  # type: ignore[arg-type]
        raise Crash

    def move_workload(self, *args: object, **kwargs: object) -> Applied:
        self.kernel.move_workload(*args, **kwargs)  # type: ignore[arg-type]
        raise Crash


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'decisions.db'}"


def pa_patches(fake: FakeKube) -> int:
    return len(fake.requests_matching("PATCH", "/podautoscalers/"))


def test_enacted_min_scale_is_in_force_and_recorded(fakes, kernel, url):
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    actuator = Actuator(open_database(url), BOOK, TTL, kernel)
    report = actuator.handle([floor(4)], NOW)
    assert report.enacted == 1
    pa = edge.get(PA, "PodAutoscaler", "shop", "checkout-00001")
    assert pa["metadata"]["annotations"][MIN] == "4"
    [action] = actuator.ledger.find()
    assert action.state is ActionState.ENACTED
    assert action.detail["observed"]["min_scale"] == 4
    assert action.detail["object"] == "Knative Service shop/checkout @ edge-a"


def test_a_crash_between_the_write_and_the_record_does_not_enact_twice(fakes, kube_settings, sleeps, clock, url):
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    first = KubeMetaKernel(kube_settings, sleep=sleeps.append, clock=clock)
    store = RecommendationStore(open_database(url))
    with pytest.raises(Crash):
        Actuator(store.database, BOOK, TTL, DiesAfterTheWrite(first)).handle([floor(4)], NOW)  # type: ignore[arg-type]
    store.database.close()
    first.close()
    assert pa_patches(edge) == 1

    restarted_kernel = KubeMetaKernel(kube_settings, sleep=sleeps.append, clock=clock)
    restarted = Actuator(open_database(url), BOOK, TTL, restarted_kernel)
    assert restarted.recover(NOW + timedelta(minutes=1)) == 1
    [action] = restarted.ledger.find()
    assert action.state is ActionState.ENACTED
    assert action.detail["recovered"] is True
    assert restarted.store.find(status=RecommendationStatus.ENACTED)
    later = NOW + timedelta(minutes=10)
    restarted.handle([floor(4, later)], later)  # the decider still wants 4: already in force
    assert pa_patches(edge) == 1
    restarted_kernel.close()


def test_a_crash_before_the_write_leaves_nothing_to_undo(fakes, kernel, url):
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    store = RecommendationStore(open_database(url))
    rec_id, _ = store.publish(floor(4).recommendation)
    Actuator(store.database, BOOK, TTL, kernel).ledger.begin(
        rec_id, CHECKOUT, Lever.KNATIVE_FLOOR, "scale-up", {"min_scale": 4}, 1, NOW
    )
    store.database.close()  # died after recording the intent, before calling the API

    restarted = Actuator(open_database(url), BOOK, TTL, kernel)
    assert restarted.recover(NOW + timedelta(minutes=1)) == 1
    assert restarted.ledger.find()[0].state is ActionState.ABANDONED
    assert pa_patches(edge) == 0
    later = NOW + timedelta(minutes=10)
    assert restarted.handle([floor(4, later)], later).enacted == 1
    assert pa_patches(edge) == 1


def test_a_move_interrupted_by_a_crash_is_settled_from_the_hub(fakes, kube_settings, sleeps, clock, url):
    hub = fakes["hub"]
    hub.seed(manifest_work("edge-a"))
    first = KubeMetaKernel(kube_settings, sleep=sleeps.append, clock=clock)
    store = RecommendationStore(open_database(url))
    with pytest.raises(Crash):
        Actuator(store.database, BOOK, TTL, DiesAfterTheWrite(first)).handle([move("edge-b")], NOW)  # type: ignore[arg-type]
    store.database.close()
    first.close()

    restarted_kernel = KubeMetaKernel(kube_settings, sleep=sleeps.append, clock=clock)
    restarted = Actuator(open_database(url), BOOK, TTL, restarted_kernel)
    assert restarted.recover(NOW + timedelta(minutes=1)) == 1
    assert restarted.ledger.find()[0].state is ActionState.ENACTED
    assert restarted.last_moved() == {("shop", "checkout"): NOW + timedelta(minutes=1)}
    assert [w["metadata"]["namespace"] for w in hub.list(WORK, "ManifestWork", None)] == ["edge-b"]
    assert len(hub.requests_matching("POST", "/manifestworks")) == 1
    restarted_kernel.close()


def test_forbidden_writes_fail_the_recommendation_without_retries(fakes, kube_settings, kernel, url):
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    edge.fail_next("PATCH", "/podautoscalers/", 403)
    actuator = Actuator(open_database(url), BOOK, TTL, kernel)
    assert actuator.handle([floor(4)], NOW).failed == 1
    assert actuator.store.find(status=RecommendationStatus.FAILED)[0].recommendation.target == CHECKOUT
    assert actuator.ledger.find()[0].detail["status"] == 403
    assert actuator.handle([], NOW + timedelta(hours=1)).enacted == 0
    assert pa_patches(edge) == 1


def test_a_cluster_that_keeps_failing_is_retried_later_then_given_up(fakes, kernel, url):
    edge = fakes["edge-a"]
    shop(edge, [("checkout-00001", 100)])
    edge.fail_next("PATCH", "/podautoscalers/", 503, times=100)
    actuator = Actuator(open_database(url), BOOK, TTL, kernel)
    actuator.handle([floor(4)], NOW)
    assert actuator.ledger.find()[0].state is ActionState.RETRY
    at = NOW
    for _ in range(5):
        at += timedelta(minutes=10)
        actuator.handle([], at)
    [action] = actuator.ledger.find()
    assert (action.state, action.attempts) == (ActionState.FAILED, 4)
    assert "edge-a" in action.detail["error"]
