"""The layout of a continuum replay: what it accepts, and errors that name the cluster or workload concerned."""

import pytest

from intelligence.decisions.policies import PolicyBook
from intelligence.decisions.specs import PolicySpec
from intelligence.evaluation.continuum_layout import NAMESPACE, LayoutError, load_layout, parse_layout
from intelligence.vocabulary import Tier, WorkloadRef

CLUSTERS = [
    {"name": "edge-1", "tier": "edge", "capacity_cores": 8, "labels": {"site": "plant-a"}},
    {"name": "fog-1", "tier": "fog", "capacity_cores": 32.5},
    {"name": "cloud-1", "tier": "cloud", "capacity_cores": 256},
]


def layout(*workloads, clusters=CLUSTERS):
    return {"clusters": clusters, "workloads": list(workloads) or [{"name": "ingest", "cluster": "edge-1"}]}


def test_a_layout_reads_clusters_workloads_and_their_constraints():
    parsed = parse_layout(
        layout(
            {"name": "ingest", "cluster": "edge-1", "movable": False},
            {"name": "vision", "cluster": "edge-1", "tiers": ["edge", "FOG"], "labels": {"site": "plant-a"}},
            {"name": "report", "cluster": "cloud-1"},
        )
    )
    assert [c.name for c in parsed.clusters] == ["edge-1", "fog-1", "cloud-1"]
    assert parsed.clusters[1].capacity_cores == 32.5
    assert dict(parsed.clusters[0].labels) == {"site": "plant-a"}
    ingest, vision, report = parsed.workloads
    assert (ingest.movable, vision.tiers, dict(vision.labels)) == (False, (Tier.EDGE, Tier.FOG), {"site": "plant-a"})
    assert (report.movable, report.tiers) == (True, None)
    # vision may run on edge-1 only: fog-1 lacks the label, cloud-1 is not an allowed tier
    assert parsed.allowed() == [[True, True, True], [True, False, False], [True, True, True]]
    assert "lacks the label(s) site=plant-a" in vision.refusal(parsed.clusters[1])
    assert [v.name for v in parsed.views()] == ["edge-1", "fog-1", "cloud-1"]


def test_constraints_become_the_services_own_policy_overrides():
    parsed = parse_layout(
        layout(
            {"name": "ingest", "cluster": "edge-1", "movable": False},
            {"name": "vision", "cluster": "edge-1", "tiers": ["edge", "fog"], "labels": {"site": "plant-a"}},
        )
    )
    book = PolicyBook(PolicySpec(overrides=parsed.overrides()))
    ingest = book.for_workload(WorkloadRef("edge-1", NAMESPACE, "ingest"))
    vision = book.for_workload(WorkloadRef("fog-1", NAMESPACE, "vision"))
    assert not ingest.movable
    assert vision.movable
    assert vision.tiers == (Tier.EDGE, Tier.FOG)
    assert vision.cluster_labels == (("site", "plant-a"),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a mapping with 'clusters' and 'workloads'"),
        ({"clusters": CLUSTERS, "workloads": [], "extra": 1}, "unknown key(s) extra"),
        ({"clusters": CLUSTERS}, "'workloads' must be a non-empty list"),
        (layout(clusters=[{"tier": "edge", "capacity_cores": 8}]), "cluster #1 needs a 'name'"),
        (layout(clusters=[{"name": "edge-1", "tier": "edge", "capacity": 8}]), "cluster 'edge-1'"),
        (layout(clusters=[{"name": "edge-1", "tier": "edge", "capacity": 8}]), "unknown key(s) capacity"),
        (
            layout(clusters=[{"name": "edge-1", "tier": "edge", "capacity_cores": -8}]),
            "cluster 'edge-1': capacity_cores must be a positive number of cores, got -8",
        ),
        (
            layout(clusters=[{"name": "edge-1", "tier": "edge", "capacity_cores": "eight"}]),
            "cluster 'edge-1': capacity_cores must be a positive number",
        ),
        (
            layout(clusters=[{"name": "edge-1", "tier": "moon", "capacity_cores": 8}]),
            "cluster 'edge-1': tier 'moon' is not one of cloud, fog, edge",
        ),
        (layout(clusters=[{"name": "edge-1", "capacity_cores": 8}]), "cluster 'edge-1' needs a 'tier'"),
        (layout(clusters=[*CLUSTERS, CLUSTERS[0]]), "cluster name(s) 'edge-1' appear more than once"),
        (
            layout({"name": "ingest", "cluster": "edge-9"}),
            "workload 'ingest': cluster 'edge-9' is not a cluster of the layout (one of edge-1, fog-1, cloud-1)",
        ),
        (layout({"name": "ingest", "cluster": "edge-1", "movable": "no"}), "workload 'ingest': movable must be"),
        (layout({"name": "ingest", "cluster": "edge-1", "tiers": "edge"}), "workload 'ingest': tiers must be"),
        (layout({"name": "ingest", "cluster": "edge-1", "tiers": ["sky"]}), "workload 'ingest': tier 'sky'"),
        (layout({"name": "ingest", "cluster": "edge-1", "labels": ["a"]}), "workload 'ingest': labels must map"),
        (layout({"name": "ingest", "cluster": "edge-1", "replicas": 3}), "workload 'ingest': unknown key(s) replicas"),
        (
            layout({"name": "ingest", "cluster": "edge-1", "tiers": ["cloud"]}),
            "workload 'ingest' starts on edge-1, which its constraints refuse: tier edge is not among cloud",
        ),
        (
            layout({"name": "ingest", "cluster": "fog-1", "labels": {"site": "plant-a"}}),
            "workload 'ingest' starts on fog-1, which its constraints refuse: it lacks the label(s) site=plant-a",
        ),
        (
            layout({"name": "a", "cluster": "edge-1"}, {"name": "a", "cluster": "fog-1"}),
            "workload name(s) 'a' appear more than once",
        ),
    ],
)
def test_every_mistake_is_named(data, message):
    with pytest.raises(LayoutError) as caught:
        parse_layout(data, "layout.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("layout.yaml: ")


def test_the_trace_columns_and_the_workloads_must_match():
    parsed = parse_layout(layout({"name": "a", "cluster": "edge-1"}, {"name": "b", "cluster": "fog-1"}))
    assert [w.name for w in parsed.in_order_of(["b", "a"]).workloads] == ["b", "a"]
    with pytest.raises(LayoutError, match=r"column\(s\) 'c' are not workloads of the layout"):
        parsed.in_order_of(["a", "b", "c"], "trace.csv")
    with pytest.raises(LayoutError, match=r"workload\(s\) 'b' of the layout have no column in trace\.csv"):
        parsed.in_order_of(["a"], "trace.csv")


def test_a_file_that_is_not_yaml_or_not_there_is_named(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("clusters: [\n")
    with pytest.raises(LayoutError, match=r"broken\.yaml: not valid YAML"):
        load_layout(broken)
    with pytest.raises(LayoutError, match=r"missing\.yaml: cannot read"):
        load_layout(tmp_path / "missing.yaml")
