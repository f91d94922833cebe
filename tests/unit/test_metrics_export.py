"""/metrics: the configured horizons and quantiles, a cardinality limit per cluster, one render per step."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import Export, MetricsRenderer
from intelligence.runtime.facade import ServiceFacade
from intelligence.runtime.wiring import build_service
from intelligence.vocabulary import ManualClock
from tests.driving import drive

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()


@pytest.fixture
def facade(embedded_settings):
    clock = ManualClock(START)
    svc = build_service(embedded_settings, clock=clock)
    drive(svc, clock, 3)
    yield ServiceFacade(svc), svc, clock
    svc.stop()


def _samples(text: str, name: str) -> list:
    return [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == name]


def test_the_default_export_is_three_horizons_and_the_band(facade):
    f, _, _ = facade
    text = MetricsRenderer(f, Export()).render().decode()
    forecast = _samples(text, "icos_forecast")
    assert {s.labels["horizon"] for s in forecast} == {"1", "6", "12"}
    assert {s.labels["quantile"] for s in forecast} == {"mean", "0.05", "0.95"}
    assert len(forecast) == 20 * 9
    horizons = {s.labels["horizon"]: s.value for s in _samples(text, "icos_forecast_horizon_seconds")}
    assert horizons == {"1": 300.0, "6": 1800.0, "12": 3600.0}
    assert len(_samples(text, "icos_observed")) == 20
    assert {s.labels["cluster"]: s.value for s in _samples(text, "icos_cluster_capacity_cores")} == {
        "cloud-1": 64.0,
        "fog-1": 16.0,
        "edge-1": 4.0,
    }
    units = {s.labels["signal"]: s.labels["unit"] for s in _samples(text, "icos_signal_unit")}
    assert units == {"cpu": "cores", "memory": "bytes", "requests": "requests/s"}
    roles = {(s.labels["signal"], s.labels["role"]) for s in _samples(text, "icos_model_relative_mae")}
    assert ("cpu", "champion") in roles


def test_the_export_is_configurable(facade):
    f, _, _ = facade
    text = MetricsRenderer(f, Export(horizons=(2, 99), quantiles=("upper",))).render().decode()
    forecast = _samples(text, "icos_forecast")
    assert {(s.labels["horizon"], s.labels["quantile"]) for s in forecast} == {("2", "0.95")}


def test_a_cluster_over_the_limit_is_cut_with_a_warning(facade, caplog):
    f, _, _ = facade
    with caplog.at_level(logging.WARNING, logger="api.metrics"):
        text = MetricsRenderer(f, Export(max_series_per_cluster=4)).render().decode()
    per_cluster: dict[str, set[str]] = {}
    for s in _samples(text, "icos_forecast"):
        per_cluster.setdefault(s.labels["cluster"], set()).add(s.labels["signal"] + s.labels["workload"])
    assert all(len(v) <= 4 for v in per_cluster.values())
    dropped = {s.labels["cluster"]: s.value for s in _samples(text, "icos_metrics_series_dropped")}
    assert dropped == {"cloud-1": 4.0, "fog-1": 2.0, "edge-1": 2.0}  # 8, 6 and 6 series
    assert len([r for r in caplog.records if "max_series_per_cluster" in r.getMessage()]) == 3


def test_one_render_per_engine_step(facade):
    f, svc, clock = facade
    renderer = MetricsRenderer(f, Export())
    first = renderer.service_families()
    assert renderer.service_families() is first  # the same bytes: not rendered again
    drive(svc, clock, 1)
    assert renderer.service_families() is not first


def test_label_values_are_escaped():
    from api.metrics import _esc

    assert _esc('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert re.fullmatch(r"[^\n]*", _esc("x\ny"))


def test_the_fast_forecast_json_is_the_documented_model(facade):
    from api.schemas import ForecastOut, forecast_json
    from intelligence.vocabulary import Forecast, SeriesKey

    f, _, _ = facade
    nan = float("nan")
    odd = Forecast(SeriesKey.of("c", "cpu", {"workload": "w"}), 1_767_225_600.5, 60, (1.0, nan), {0.1: (0.5, nan)})
    for fc in [*f.forecasts(), odd]:
        fast = orjson.loads(orjson.dumps(forecast_json(fc, "cores")))
        assert fast == ForecastOut.of(fc, "cores").model_dump(mode="json")
