import math

import numpy as np
import pytest

from collectors.base import normalise
from collectors.errors import MalformedResponse, QueryRejected
from collectors.prometheus import Signal, convert_matrix, render_query
from intelligence.domain import SeriesKey

SIGNAL = Signal("cpu", "q", ("namespace", "workload"))


def test_normalise_sorts_drops_duplicates_and_maps_inf_to_nan():
    b = normalise(SeriesKey.of("c", "cpu"), np.array([3.0, 1.0, 2.0, 2.0]), np.array([3.0, 1.0, 2.0, np.inf]))
    assert b.timestamps.tolist() == [1.0, 2.0, 3.0]
    assert b.values[0] == 1.0
    assert math.isnan(b.values[1])  # the last of the duplicates wins, and it was +Inf
    assert b.values[2] == 3.0


def test_matrix_strings_become_floats_and_series_keep_their_cluster():
    result = [
        {"metric": {"namespace": "iot", "workload": "ingest", "pod": "x"}, "values": [[60, "1.5"], [120, "NaN"]]},
        {"metric": {"namespace": "iot", "workload": "gw"}, "values": [[60, "+Inf"]]},
        {"metric": {"namespace": "iot", "workload": "empty"}, "values": []},
    ]
    batches = convert_matrix("edge-1", SIGNAL, result)
    assert [str(b.key) for b in batches] == [
        'edge-1/cpu{namespace="iot",workload="ingest"}',
        'edge-1/cpu{namespace="iot",workload="gw"}',
    ]
    assert batches[0].values[0] == 1.5
    assert math.isnan(batches[0].values[1])
    assert math.isnan(batches[1].values[0])


@pytest.mark.parametrize("result", [{"not": "a list"}, [{"metric": {}}], [{"metric": {}, "values": [["x", "1"]]}]])
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
