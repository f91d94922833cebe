"""Rescheduling, placement scores and the safety envelope: examples and properties (hypothesis)."""

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from intelligence.decisions.envelope import EnactedAction, Proposal, check
from intelligence.decisions.outcomes import Outcome
from intelligence.decisions.placement import placement_scores
from intelligence.decisions.planner import DecisionInputs, plan
from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.rescheduling import ClusterView, cluster_loads, decide_moves
from intelligence.decisions.specs import EnvelopeSpec, OverrideSpec, PolicySpec, RescheduleSpec
from intelligence.vocabulary import ActionKind, Forecast, SeriesKey, Tier, WorkloadKind, WorkloadRef

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
TTL = timedelta(hours=1)
T, OTHER = WorkloadRef("edge-1", "iot", "t"), WorkloadRef("edge-1", "iot", "other")
T0 = NOW.timestamp()
CLUSTERS = [
    ClusterView("cloud-1", Tier.CLOUD, 64.0, {"region": "eu"}),
    ClusterView("edge-1", Tier.EDGE, 4.0),
    ClusterView("fog-1", Tier.FOG, 16.0, {"region": "eu"}),
]


def cpu(cluster: str, workload: str, peak: float, namespace: str = "iot") -> Forecast:
    key = SeriesKey.of(cluster, "cpu", {"namespace": namespace, "workload": workload})
    points = (peak * 0.8, peak * 0.9)
    return Forecast(key, T0, 60.0, points, {0.05: (0.0, 0.0), 0.95: (peak * 0.9, peak)})


def moves(forecasts, policies: PolicySpec | None = None, clusters=CLUSTERS, last_moved=None):
    book = PolicyBook(policies or PolicySpec())
    loads = cluster_loads(clusters, forecasts, book.spec.reschedule.quantile)
    return decide_moves(loads, book.for_workload, last_moved or {}, book.spec.reschedule, NOW, TTL)


def test_a_cluster_forecast_to_saturate_sheds_its_largest_workload_to_the_most_headroom():
    decided = moves([cpu("edge-1", "ingest", 2.5), cpu("edge-1", "gateway", 1.2), cpu("fog-1", "traffic", 8.0)])
    recommended = [d for d in decided if d.recommendation is not None]
    assert len(recommended) == 1
    rec = recommended[0].recommendation
    assert rec.kind is ActionKind.REALLOCATION
    assert rec.target == WorkloadRef("edge-1", "iot", "ingest")
    assert rec.params == {"cluster": "cloud-1"}
    assert any(r.startswith("fog-1") for r in rec.explanation.rejected)
    assert "forecast to saturate" in rec.explanation.summary


def test_constraints_dwell_time_and_pinning_are_respected():
    forecasts = [cpu("edge-1", "ingest", 4.0)]
    edge_only = PolicySpec(overrides=(OverrideSpec(workload="ingest", tiers=(Tier.EDGE, Tier.FOG)),))
    rec = next(d.recommendation for d in moves(forecasts, edge_only) if d.recommendation)
    assert rec.params == {"cluster": "fog-1"}
    labelled = PolicySpec(overrides=(OverrideSpec(namespace="iot", cluster_labels={"region": "us"}),))
    held = moves(forecasts, labelled)
    assert [d.outcome for d in held] == [Outcome.HOLD]
    assert "no cluster can take" in held[0].explanation.summary
    pinned = PolicySpec(overrides=(OverrideSpec(workload="ingest", movable=False),))
    assert moves(forecasts, pinned) == []
    recently = {("iot", "ingest"): NOW - timedelta(minutes=30)}
    stays = moves(forecasts, last_moved=recently)
    assert [d.outcome for d in stays] == [Outcome.HOLD]
    assert "dwell" in stays[0].explanation.summary


def test_down_clusters_are_evacuated_and_never_chosen():
    clusters = [CLUSTERS[0], ClusterView("edge-1", Tier.EDGE, 4.0, up=False), CLUSTERS[2]]
    decided = moves([cpu("edge-1", "ingest", 0.2)], clusters=clusters)
    assert decided[0].recommendation is not None  # a small workload leaves a down cluster: no move-cost test
    down_fog = [CLUSTERS[0], CLUSTERS[1], ClusterView("fog-1", Tier.FOG, 16.0, up=False)]
    rec = next(d.recommendation for d in moves([cpu("edge-1", "ingest", 4.0)], clusters=down_fog) if d.recommendation)
    assert rec.params == {"cluster": "cloud-1"}


def test_small_gains_are_not_worth_a_move():
    policy = PolicySpec(reschedule=RescheduleSpec(move_cost=0.5))
    decided = moves([cpu("edge-1", "a", 3.2), cpu("edge-1", "b", 0.6)], policy)
    assert all(d.recommendation is None for d in decided)
    assert "move cost" in decided[0].explanation.summary


def test_placement_scores_are_forecast_headroom_in_percent():
    clusters = [*CLUSTERS[:2], ClusterView("fog-1", Tier.FOG, 16.0, anomalous=True), ClusterView("x", Tier.EDGE, 0.0)]
    loads = cluster_loads(clusters, [cpu("edge-1", "ingest", 5.0), cpu("cloud-1", "web", 16.0)], 0.95)
    assert placement_scores(loads) == {"cloud-1": 75, "edge-1": -25, "fog-1": -100, "x": 0}


def test_the_plan_puts_floors_moves_and_scores_together():
    requests = Forecast(
        SeriesKey.of("edge-1", "requests", {"namespace": "iot", "workload": "ingest"}),
        T0,
        60.0,
        (40.0,),
        {0.05: (30.0,), 0.95: (50.0,)},
    )
    inputs = DecisionInputs(scaling=[requests], load=[cpu("edge-1", "ingest", 4.0)], clusters=CLUSTERS)
    planned = plan(inputs, PolicyBook(PolicySpec()), NOW, TTL)
    kinds = sorted(d.recommendation.kind.value for d in planned.decisions if d.recommendation)
    assert kinds == ["reallocation", "scale-up"]
    assert planned.scores["edge-1"] == 0
    deployments = PolicySpec(overrides=(OverrideSpec(namespace="iot", kind=WorkloadKind.DEPLOYMENT),))
    as_deployment = plan(inputs, PolicyBook(deployments), NOW, TTL)
    scale_out = next(
        d.recommendation for d in as_deployment.decisions if d.recommendation.kind is not ActionKind.REALLOCATION
    )
    assert (scale_out.kind, scale_out.params) == (ActionKind.SCALE_OUT, {"replicas": 5})


# -- properties -------------------------------------------------------------------------------------

workload_peaks = st.lists(
    st.tuples(st.sampled_from(["cloud-1", "edge-1", "fog-1"]), st.floats(min_value=0.0, max_value=40.0)),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(peaks=workload_peaks, up=st.lists(st.booleans(), min_size=3, max_size=3))
def test_moves_fit_their_destination_and_are_deterministic(peaks, up):
    clusters = [ClusterView(c.name, c.tier, c.capacity, c.labels, up=u) for c, u in zip(CLUSTERS, up, strict=True)]
    forecasts = [cpu(cluster, f"w{i}", peak) for i, (cluster, peak) in enumerate(peaks)]
    first = moves(forecasts, clusters=clusters)
    assert first == moves(forecasts, clusters=clusters)
    policy = RescheduleSpec()
    loads = cluster_loads(clusters, forecasts, policy.quantile)
    added = dict.fromkeys((c.name for c in clusters), 0.0)
    recommended = [d.recommendation for d in first if d.recommendation is not None]
    assert len(recommended) <= policy.max_moves_per_decision
    for rec in recommended:
        dest = rec.params["cluster"]
        assert dest != rec.target.cluster
        view = next(c for c in clusters if c.name == dest)
        assert view.up
        moved = loads[rec.target.cluster].workloads[rec.target]
        added[dest] += moved
        added[rec.target.cluster] -= moved  # planned moves out make room, in the order they were planned
        assert (loads[dest].peak + added[dest]) / view.capacity <= policy.target_utilisation + 1e-9


@settings(max_examples=100, deadline=None)
@given(minutes_ago=st.integers(min_value=0, max_value=239), peak=st.floats(min_value=3.7, max_value=40.0))
def test_no_workload_moves_back_within_its_dwell_time(minutes_ago, peak):
    moved = {("iot", "w0"): NOW - timedelta(minutes=minutes_ago)}
    assert all(d.recommendation is None for d in moves([cpu("edge-1", "w0", peak)], last_moved=moved))


@settings(max_examples=300, deadline=None)
@given(
    current=st.integers(min_value=0, max_value=60),
    proposed=st.integers(min_value=0, max_value=60),
    history=st.lists(
        st.tuples(st.integers(min_value=0, max_value=120), st.sampled_from([-1, 0, 1]), st.booleans()), max_size=40
    ),
    killed=st.booleans(),
)
def test_the_envelope_never_lets_through_what_it_must_not(current, proposed, history, killed):
    envelope = EnvelopeSpec(max_step=4, cooldown_minutes=5, reversal_minutes=30, budget_actions=10)
    past = [EnactedAction(T if mine else OTHER, NOW - timedelta(minutes=m), d) for m, d, mine in history]
    proposal = Proposal(T, current, proposed, (1, 50))
    verdict = check(proposal, past, envelope, killed, NOW)
    assert verdict == check(proposal, past, envelope, killed, NOW)
    if not verdict.allowed:
        return
    assert not killed
    assert verdict.value is not None
    assert 1 <= proposed <= 50
    assert abs(verdict.value - current) <= envelope.max_step
    assert (verdict.value - current) * (proposed - current) > 0  # same direction, never beyond the proposal
    mine = [a for a in past if a.target == T]
    if proposal.direction < 0:  # predict up, react down: only a decrease waits for the cooldown and the reversal window
        assert all(NOW - a.at >= timedelta(minutes=5) for a in mine)
        assert not any(a.direction == +1 and NOW - a.at < timedelta(minutes=30) for a in mine)
    assert sum(1 for a in past if NOW - a.at < timedelta(minutes=60)) < envelope.budget_actions
