import json
import math

import numpy as np
import pytest

from collectors.base import normalise
from collectors.errors import MalformedResponse, QueryRejected
from collectors.prometheus import ClusterTarget, CollectionSpec, RawMatrix, Signal, convert_matrix, render_query
from intelligence.runtime import specs
from intelligence.settings import load_settings
from intelligence.vocabulary import SeriesKey, Tier

SIGNAL = Signal("cpu", "q", ("namespace", "workload"))


def test_normalise_sorts_drops_duplicates_and_maps_inf_to_nan():
    b = normalise(SeriesKey.of("c", "cpu"), np.array([3.0, 1.0, 2.0, 2.0]), np.array([3.0, 1.0, 2.0, np.inf]))
    assert b.timestamps.tolist() == [1.0, 2.0, 3.0]
    assert b.values[0] == 1.0
    assert math.isnan(b.values[1])  # the last of the duplicates wins, and it was +Inf
    assert b.values[2] == 3.0


def as_list(result):
    return result


def as_raw(result):
    """The body as Prometheus writes it (compact JSON), for the fast path."""
    body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return RawMatrix(json.dumps(body, separators=(",", ":")).encode())


FORMS = pytest.mark.parametrize("form", [as_list, as_raw], ids=["parsed", "raw"])


@FORMS
def test_matrix_strings_become_floats_and_series_keep_their_cluster(form):
    result = [
        {"metric": {"namespace": "iot", "workload": "ingest", "pod": "x"}, "values": [[60, "1.5"], [120, "NaN"]]},
        {"metric": {"namespace": "iot", "workload": "gw"}, "values": [[60.5, "+Inf"], [61, "-2e-3"]]},
        {"metric": {"namespace": "iot", "workload": "hist"}, "histograms": [[60, {"count": "1"}]]},
        {"metric": {"namespace": 'we"ird]],"values":[[', "workload": "w"}, "values": [[60, "7"]]},
    ]
    batches = convert_matrix("edge-1", SIGNAL, form(result))
    assert [str(b.key) for b in batches] == [
        'edge-1/cpu{namespace="iot",workload="ingest"}',
        'edge-1/cpu{namespace="iot",workload="gw"}',
        'edge-1/cpu{namespace="we"ird]],"values":[[",workload="w"}',
    ]
    assert batches[0].timestamps.tolist() == [60.0, 120.0]
    assert batches[0].values[0] == 1.5
    assert math.isnan(batches[0].values[1])
    assert math.isnan(batches[1].values[0])
    assert batches[1].timestamps.tolist() == [60.5, 61.0]
    assert batches[1].values[1] == -0.002
    assert batches[2].values.tolist() == [7.0]


@FORMS
def test_two_series_with_the_same_workload_labels_are_refused(form):
    result = [
        {"metric": {"namespace": "a", "pod": "1"}, "values": [[60, "1"]]},
        {"metric": {"namespace": "a", "pod": "2"}, "values": [[60, "2"]]},
    ]
    with pytest.raises(QueryRejected, match="aggregate the query by namespace, workload"):
        convert_matrix("edge-1", SIGNAL, form(result))


@pytest.mark.parametrize(
    "result",
    [
        {"not": "a list"},
        [{"metric": {}}],
        [{"metric": {}, "values": [["x", "1"]]}],
        RawMatrix(b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"zz"]]}]}}'),
    ],
)
def test_malformed_results_name_cluster_and_signal(result):
    with pytest.raises(MalformedResponse, match="cluster 'edge-1', signal 'cpu'"):
        convert_matrix("edge-1", SIGNAL, result)


def test_render_query_with_and_without_a_selector():
    template = 'sum(rate(x{{a="b"{selector}}}[{window}])) + y{{{selector_bare}}}'
    assert render_query(template, {}, "5m") == 'sum(rate(x{a="b"}[5m])) + y{}'
    assert render_query(template, {"cluster": "e1"}, "1m") == 'sum(rate(x{a="b",cluster="e1"}[1m])) + y{cluster="e1"}'


def test_error_tree_says_the_retry_policy():
    assert not QueryRejected("c", "bad").temporary
    assert MalformedResponse("c", "bad").temporary


def test_the_collection_spec_defaults_are_the_settings_defaults():
    """With ``collection`` left out of the configuration the collector gets exactly ``CollectionSpec()``."""
    assert specs.collection_spec(load_settings(None)) == CollectionSpec()


def test_settings_become_cluster_targets_signals_and_a_spec(tmp_path):
    auth = {
        "ca_file": str(tmp_path / "ca.pem"),
        "client_cert_file": str(tmp_path / "client.pem"),
        "client_key_file": str(tmp_path / "client.key"),
        "bearer_token_file": str(tmp_path / "token"),
    }
    clusters = [
        {
            "name": "edge-1",
            "url": "https://prom.edge:9090/",
            "tier": "edge",
            "selector": {"cluster": "e"},
            "auth": auth,
        },
        {"name": "lab-1", "url": "http://prom.lab", "retries": 4, "auth": {"verify_tls": False}},
    ]
    settings = load_settings(None, clusters=clusters, **{"collection.backfill_hours": 2, "collection.step_seconds": 30})
    edge, lab = (specs.cluster_target(c) for c in settings.clusters)
    assert edge == ClusterTarget(
        "edge-1",
        Tier.EDGE,
        "https://prom.edge:9090",
        selector={"cluster": "e"},
        bearer_token_file=tmp_path / "token",
        verify=str(tmp_path / "ca.pem"),  # the CA bundle, which also means: verify
        cert=(str(tmp_path / "client.pem"), str(tmp_path / "client.key")),
    )
    assert (lab.tier, lab.verify, lab.cert, lab.retries) == (Tier.CLOUD, False, None, 4)
    assert [s.name for s in specs.signals(settings)] == ["cpu", "memory", "requests"]
    spec = specs.collection_spec(settings)
    assert (spec.step_seconds, spec.backfill_seconds, spec.wait_seconds) == (30, 7200.0, 5.0)
