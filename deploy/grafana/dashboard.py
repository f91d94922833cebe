"""The Grafana dashboard of icos-intelligence, generated with grafanalib: ``python deploy/grafana/dashboard.py``.

Writes ``deploy/grafana/icos-intelligence.json`` (import it, or provision it) from the series of
the service's ``/metrics`` and the recording rules of ``deploy/prometheus``. A test regenerates it
and compares, and checks that every metric a panel queries is one the service or the rules export.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    GridPos,
    RowPanel,
    Stat,
    Target,
    Template,
    Templating,
    Threshold,
    TimeSeries,
)

OUT = Path(__file__).with_name("icos-intelligence.json")
DS = "${datasource}"
SEL = 'cluster=~"$cluster", signal="$signal", namespace=~"$namespace", workload=~"$workload"'


def _target(expr: str, legend: str, ref: str) -> Target:
    return Target(expr=expr, legendFormat=legend, refId=ref, datasource=DS)


def _templating() -> Templating:
    def var(name: str, query: str, multi: bool = True) -> Template:
        return Template(
            name=name,
            label=name,
            query=query,
            dataSource=DS,
            includeAll=multi,
            multi=multi,
            refresh=2,  # on time range change
            sort=1,
        )

    datasource = Template(name="datasource", label="Prometheus", query="prometheus", type="datasource")
    return Templating(
        list=[
            datasource,
            var("cluster", "label_values(icos_forecast, cluster)"),
            var("signal", "label_values(icos_forecast, signal)", multi=False),
            var("namespace", 'label_values(icos_forecast{cluster=~"$cluster"}, namespace)'),
            var("workload", 'label_values(icos_forecast{cluster=~"$cluster", namespace=~"$namespace"}, workload)'),
        ]
    )


def dashboard() -> Dashboard:
    actual_vs_forecast = TimeSeries(
        dataSource=DS,
        title="Actual and forecast one step ahead, with its band ($signal)",
        description="icos_observed is the newest sample; the forecast made for the next step with the band's "
        "edges (quantiles 0.05 and 0.95 with models.interval 0.9). The surge a Knative floor provisions for is on "
        "the service's own page.",
        targets=[
            _target(f"icos_observed{{{SEL}}}", "actual {{cluster}}/{{namespace}}/{{workload}}", "A"),
            _target(f'icos_forecast{{{SEL}, horizon="1", quantile="mean"}}', "forecast {{workload}}", "B"),
            _target(f'icos_forecast{{{SEL}, horizon="1", quantile="0.05"}}', "lower {{workload}}", "C"),
            _target(f'icos_forecast{{{SEL}, horizon="1", quantile="0.95"}}', "upper {{workload}}", "D"),
        ],
        fillOpacity=0,
        overrides=[
            {
                "matcher": {"id": "byFrameRefID", "options": "D"},
                "properties": [
                    {"id": "custom.fillBelowTo", "value": "lower {{workload}}"},
                    {"id": "custom.fillOpacity", "value": 15},
                    {"id": "custom.lineWidth", "value": 0},
                ],
            },
            {
                "matcher": {"id": "byFrameRefID", "options": "C"},
                "properties": [{"id": "custom.lineWidth", "value": 0}],
            },
        ],
        gridPos=GridPos(h=9, w=16, x=0, y=1),
    )
    horizons = TimeSeries(
        dataSource=DS,
        title="Forecast by horizon, summed per cluster ($signal)",
        targets=[
            _target(
                'cluster_signal_horizon:icos_forecast_mean:sum{cluster=~"$cluster", signal="$signal"}',
                "{{cluster}} +{{horizon}} steps",
                "A",
            ),
            _target('cluster_signal:icos_observed:sum{cluster=~"$cluster", signal="$signal"}', "{{cluster}} now", "B"),
        ],
        gridPos=GridPos(h=9, w=8, x=16, y=1),
    )
    capacity = TimeSeries(
        dataSource=DS,
        title="CPU forecast (band top) over capacity, within 30 minutes",
        description="The alert IcosClusterCpuForecastAboveCapacity fires above 0.9 (deploy/prometheus).",
        targets=[
            _target(
                'max by (cluster) (cluster_horizon:icos_forecast_cpu_upper_over_capacity:ratio{cluster=~"$cluster"}'
                " and on (horizon) (icos_forecast_horizon_seconds <= 1800))",
                "{{cluster}}",
                "A",
            )
        ],
        unit="percentunit",
        thresholdsStyleMode="line",
        thresholds=[Threshold("green", 0, 0.0), Threshold("orange", 1, 0.9), Threshold("red", 2, 1.0)],
        gridPos=GridPos(h=8, w=12, x=0, y=11),
    )
    anomalies = TimeSeries(
        dataSource=DS,
        title="Anomaly scores ($signal)",
        targets=[_target(f"icos_anomaly_score{{{SEL}}}", "{{cluster}}/{{namespace}}/{{workload}}", "A")],
        valueMin=0,
        valueMax=1,
        thresholdsStyleMode="line",
        thresholds=[Threshold("green", 0, 0.0), Threshold("red", 1, 0.9)],
        gridPos=GridPos(h=8, w=12, x=12, y=11),
    )
    recommendations = TimeSeries(
        dataSource=DS,
        title="Recommendations per cluster and status",
        targets=[_target('icos_recommendations{cluster=~"$cluster"}', "{{cluster}} {{status}}", "A")],
        drawStyle="bars",
        gridPos=GridPos(h=8, w=12, x=0, y=20),
    )
    actions = TimeSeries(
        dataSource=DS,
        title="Actions per cluster and state",
        targets=[_target('icos_actions{cluster=~"$cluster"}', "{{cluster}} {{state}}", "A")],
        drawStyle="bars",
        gridPos=GridPos(h=8, w=12, x=12, y=20),
    )
    accuracy = TimeSeries(
        dataSource=DS,
        title="Model accuracy: one-step MAE relative to the naive forecast (below 1 is better)",
        targets=[_target("icos_model_relative_mae", "{{signal}} {{role}}", "A")],
        thresholdsStyleMode="line",
        thresholds=[Threshold("green", 0, 0.0), Threshold("red", 1, 1.0)],
        gridPos=GridPos(h=8, w=12, x=0, y=29),
    )
    coverage = TimeSeries(
        dataSource=DS,
        title="Band coverage: share of samples inside the band",
        targets=[_target("icos_model_interval_coverage", "{{signal}} {{role}}", "A")],
        unit="percentunit",
        gridPos=GridPos(h=8, w=8, x=12, y=29),
    )
    up = Stat(
        title="Clusters answering",
        dataSource=DS,
        targets=[_target("sum(max by (cluster) (icos_cluster_up))", "up", "A")],
        gridPos=GridPos(h=8, w=4, x=20, y=29),
    )
    return Dashboard(
        title="icos-intelligence: forecasts, anomalies, decisions",
        uid="icos-intelligence",
        description="Forecasts served on /metrics next to what happened, anomaly scores, recommendations and "
        "actions per cluster, model accuracy.",
        tags=["icos", "forecasting"],
        timezone="utc",
        refresh="30s",
        templating=_templating(),
        panels=[
            RowPanel(title="Load and forecast", gridPos=GridPos(h=1, w=24, x=0, y=0)),
            actual_vs_forecast,
            horizons,
            RowPanel(title="Capacity and anomalies", gridPos=GridPos(h=1, w=24, x=0, y=10)),
            capacity,
            anomalies,
            RowPanel(title="Decisions", gridPos=GridPos(h=1, w=24, x=0, y=19)),
            recommendations,
            actions,
            RowPanel(title="Models", gridPos=GridPos(h=1, w=24, x=0, y=28)),
            accuracy,
            coverage,
            up,
        ],
    ).auto_panel_ids()


def render() -> str:
    return json.dumps(dashboard().to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    sys.stdout.write(f"wrote {OUT}\n")
