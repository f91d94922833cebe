"""A real Prometheus scrapes the service's /metrics and evaluates the shipped rules (deploy/prometheus).

The embedded default's edge-1 (4 cores, demand growing through the morning) is forecast above 90% of its
capacity within 30 minutes; Prometheus, with the rules file as shipped, records the ratio and raises the
alert (pending: it has a ``for``), and does not for cloud-1.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from intelligence.runtime.wiring import build_service
from intelligence.vocabulary import ManualClock
from tests import stack
from tests.driving import drive
from tests.polling import wait_for
from tests.serving import serve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "icos-intelligence.rules.yml"
START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()
ALERT = "IcosClusterCpuForecastAboveCapacity"


def _query(base: str, expr: str) -> list[dict[str, Any]]:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_prometheus_scrapes_the_service_and_raises_the_predicted_cpu_alert(tmp_path, embedded_settings, test_stack):
    clock = ManualClock(START)
    svc = build_service(embedded_settings, clock=clock)
    drive(svc, clock, 50)  # to 09:40: edge-1 is forecast at about 1.1 of its cores within 30 minutes
    try:
        with serve(create_app(embedded_settings, service=svc)) as url:
            target = url.removeprefix("http://")
            base = tmp_path / "prometheus"
            (base / "data").mkdir(parents=True)
            (base / "prometheus.yml").write_text(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                f"rule_files:\n  - {RULES}\n"
                "scrape_configs:\n  - job_name: icos-intelligence\n"
                f"    static_configs:\n      - targets: ['{target}']\n"
            )
            port = stack.free_port()
            proc = stack.serve_prometheus(base, port, "Prometheus scraping icos-intelligence")
            prom = f"http://127.0.0.1:{port}"
            try:
                within = (
                    "max by (cluster) (cluster_horizon:icos_forecast_cpu_upper_over_capacity:ratio"
                    " and on (horizon) (icos_forecast_horizon_seconds <= 1800))"
                )
                ratio = wait_for(lambda: _query(prom, within), "the recording rule's first value")
                by_cluster = {r["metric"]["cluster"]: float(r["value"][1]) for r in ratio}
                assert by_cluster["edge-1"] > 0.9
                assert by_cluster["cloud-1"] < 0.9
                alerts = wait_for(lambda: _query(prom, f'ALERTS{{alertname="{ALERT}"}}'), f"the alert {ALERT}")
                states = {a["metric"]["cluster"]: a["metric"]["alertstate"] for a in alerts}
                assert states.get("edge-1") in ("pending", "firing")
                assert "cloud-1" not in states
            finally:
                stack.stop_group(proc.pid)
    finally:
        svc.stop()
