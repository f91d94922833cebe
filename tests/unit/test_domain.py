import pickle

import pytest

from intelligence.vocabulary import AnomalyReason, AnomalyScore, Forecast, SeriesKey, WorkloadRef


def test_series_key_is_stable_whatever_the_label_order():
    a = SeriesKey.of("edge-1", "cpu", {"workload": "ingest", "namespace": "iot"})
    b = SeriesKey.of("edge-1", "cpu", {"namespace": "iot", "workload": "ingest"})
    assert a == b
    assert hash(a) == hash(b)
    assert pickle.loads(pickle.dumps(a)) == a
    assert a.workload == WorkloadRef("edge-1", "iot", "ingest")
    assert str(a) == 'edge-1/cpu{namespace="iot",workload="ingest"}'


def test_forecast_rejects_quantiles_of_another_length():
    key = SeriesKey.of("c", "cpu")
    with pytest.raises(ValueError, match="has 1 steps, point has 2"):
        Forecast(key, 0.0, 60.0, (1.0, 2.0), {0.95: (3.0,)})
    with pytest.raises(ValueError, match="outside"):
        Forecast(key, 0.0, 60.0, (1.0,), {1.5: (3.0,)})


def test_forecast_timestamps_and_band_edges():
    fc = Forecast(SeriesKey.of("c", "cpu"), 600.0, 60.0, (1.0, 2.0), {0.95: (2.0, 3.0), 0.05: (0.0, 1.0)})
    assert fc.timestamps() == (660.0, 720.0)
    assert list(fc.quantiles) == [0.05, 0.95]
    assert fc.upper(0.95) == (2.0, 3.0)
    assert fc.upper(0.99) == (1.0, 2.0)  # absent quantile: the point
    with pytest.raises(TypeError):
        fc.quantiles[0.5] = (1.0, 1.0)  # type: ignore[index]


def test_anomaly_score_must_be_in_unit_interval():
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        AnomalyScore(SeriesKey.of("c", "cpu"), 0.0, 1.5, AnomalyReason("m", 1.0))
