"""Clusters join and leave the continuum by editing the configuration file: no restart."""

import logging
import os

import pytest
import yaml

from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def write(path, test_stack, clusters, tmp_path, stamp):
    config = {
        "clusters": [{"name": c, "url": test_stack.prometheus[c], "tier": "edge"} for c in clusters],
        "collection": {"backfill_hours": 2},
        "storage": {"state_dir": str(tmp_path / "state")},
        "mlflow": {"enabled": False},
    }
    path.write_text(yaml.safe_dump(config))
    os.utime(path, ns=(stamp, stamp))  # a distinct modification time, whatever the file system's resolution


def test_clusters_are_added_and_removed_at_run_time(test_stack, tmp_path, caplog):
    cfg = tmp_path / "icos.yaml"
    write(cfg, test_stack, ["cloud-1", "fog-1"], tmp_path, 1_000_000_000)
    clock = ManualClock(test_stack.data["end"] - 1800)
    svc = build_service(load_settings(cfg), clock=clock, config_path=cfg)
    try:
        svc.warm_up()
        assert {f.key.cluster for f in svc.forecasts.query()} == {"cloud-1", "fog-1"}
        assert svc.reloader.check() is None  # unchanged file: nothing to do

        write(cfg, test_stack, ["fog-1", "edge-1"], tmp_path, 2_000_000_000)
        assert svc.reloader.check() is not None
        svc.engine.step(clock.advance(60))
        assert {f.key.cluster for f in svc.forecasts.query()} == {"fog-1", "edge-1"}
        assert {k.cluster for k in svc.engine.bank.series_keys()} == {"fog-1", "edge-1"}
        assert {h.cluster for h in svc.engine.status.health} == {"fog-1", "edge-1"}

        cfg.write_text("clusters:\n  - name: Bad_Name\n    url: http://x\n")
        os.utime(cfg, ns=(3_000_000_000, 3_000_000_000))
        with caplog.at_level(logging.ERROR, logger="intelligence.runtime.reload"):
            assert svc.reloader.check() is None
        assert "reload refused, keeping the running one" in caplog.text
        assert "clusters[0].name" in caplog.text
        svc.engine.step(clock.advance(60))
        assert {f.key.cluster for f in svc.forecasts.query()} == {"fog-1", "edge-1"}
    finally:
        svc.stop()
