"""`icos-intel run` as a user runs it: the embedded default in a real process, then Ctrl-C."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from models import checkpoint
from models.bank import ModelBank

pytestmark = pytest.mark.e2e

ICOS_INTEL = str(Path(sys.executable).with_name("icos-intel"))


def get(url: str):
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def test_run_serves_recommendations_then_stops_cleanly_on_ctrl_c(tmp_path):
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [ICOS_INTEL, "run", "--port", "0", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        banner = ""
        while "Press Ctrl-C" not in banner:
            line = proc.stderr.readline()
            assert line, f"exited early ({proc.poll()}): {banner}"
            banner += line
        base = re.search(r"health\s+(http://\S+)/healthz", banner).group(1)
        assert "MLflow           sqlite:///" in banner
        deadline = time.monotonic() + 60
        recs: list = []
        while not recs and time.monotonic() < deadline:
            recs = get(f"{base}/v1/recommendations")
            time.sleep(0.1)  # polling a live server, bounded by the deadline
        assert recs, "no recommendation within a minute"
        assert len(get(f"{base}/v1/forecasts")) == 20
        deadline = time.monotonic() + 60
        while get(f"{base}/healthz")["mlflow"]["state"] != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert get(f"{base}/healthz")["mlflow"]["state"] == "ok"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped; state saved" in err
    assert "Traceback" not in err
    assert (state / "checkpoints" / "bank-shard0.pkl").is_file()
    assert (state / "decisions.db").is_file()
    assert (state / "mlflow.db").is_file()


def test_run_with_a_bad_configuration_names_the_key(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("policy:\n  mode: yolo\n")
    done = subprocess.run([ICOS_INTEL, "run", "--config", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "policy.mode" in done.stderr
    assert "'yolo'" in done.stderr
    assert "Traceback" not in done.stderr


def start(state: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str, str]:
    proc = subprocess.Popen(
        [ICOS_INTEL, "run", "--port", "0", "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )
    banner = ""
    while "Press Ctrl-C" not in banner:
        line = proc.stderr.readline()
        assert line, f"exited early ({proc.poll()}): {banner}"
        banner += line
    return proc, re.search(r"health\s+(http://\S+)/healthz", banner).group(1), banner


def test_kill_9_between_checkpoints_loses_at_most_one_interval(tmp_path):
    state = tmp_path / "state"
    env = {"ICOS_MODELS__CHECKPOINT_EVERY_STEPS": "5", "ICOS_MLFLOW__ENABLED": "false"}
    proc, base, _ = start(state, env)
    path = state / "checkpoints" / "bank-shard0.pkl"
    try:
        deadline = time.monotonic() + 60
        while not (path.is_file() and get(f"{base}/healthz")["engine"]["steps"] >= 12):
            assert time.monotonic() < deadline, "no checkpoint within a minute"
            time.sleep(0.1)  # polling a live server, bounded by the deadline
        engine = get(f"{base}/healthz")["engine"]
    finally:
        proc.kill()  # SIGKILL: no final checkpoint
        proc.communicate(timeout=30)
    last_step = datetime.fromisoformat(engine["last_step_at"]).timestamp()
    _, snapshot = checkpoint.read(path)  # the file this test's service wrote
    saved = ModelBank(lambda key: None, **snapshot)
    assert len(saved) == 20
    step = 300.0  # the simulated step; a checkpoint every 5 steps (and the one in flight)
    assert saved.latest_timestamp() >= last_step - (5 + 2) * step
    again, base, banner = start(state, env)
    try:
        assert get(f"{base}/healthz")["engine"]["series"] == 20
    finally:
        again.send_signal(signal.SIGINT)
        _, err = again.communicate(timeout=60)
    assert again.returncode == 0, err
    assert "restored 20 series" in banner + err  # from the checkpoint, not a cold start


def test_after_kill_9_nothing_is_repeated_and_time_goes_on(tmp_path):
    """A crash and a restart repeat no recommendation, date none before the crash, and lose no anomaly event."""
    state = tmp_path / "state"
    env = {"ICOS_MODELS__CHECKPOINT_EVERY_STEPS": "20", "ICOS_MLFLOW__ENABLED": "false"}
    proc, base, _ = start(state, env)
    try:
        deadline = time.monotonic() + 90
        while get(f"{base}/healthz")["engine"]["steps"] < 30 or not get(f"{base}/v1/anomalies"):
            assert time.monotonic() < deadline, "no anomaly event within 90 s"
            time.sleep(0.1)  # polling a live server, bounded by the deadline
        before = {r["id"]: r for r in get(f"{base}/v1/recommendations?all=true&limit=1000")}
        events = get(f"{base}/v1/anomalies?limit=1000")
        crashed_at = datetime.fromisoformat(get(f"{base}/healthz")["engine"]["last_step_at"])
    finally:
        proc.kill()  # SIGKILL: no final checkpoint, so the models go back up to 20 steps
        proc.communicate(timeout=30)
    assert before
    again, base, _ = start(state, env)
    try:
        deadline = time.monotonic() + 60
        while get(f"{base}/healthz")["engine"]["steps"] < 10:
            assert time.monotonic() < deadline, "the restarted service did not step"
            time.sleep(0.1)  # polling a live server, bounded by the deadline
        after = get(f"{base}/v1/recommendations?all=true&limit=1000")
        kept = get(f"{base}/v1/anomalies?limit=1000")
        resumed_at = datetime.fromisoformat(get(f"{base}/healthz")["engine"]["last_step_at"])
    finally:
        again.send_signal(signal.SIGINT)
        again.communicate(timeout=60)
    assert resumed_at > crashed_at  # the simulated clock went on, not back to the checkpoint
    open_per_target: dict[tuple, int] = {}
    for r in after:
        created, until = datetime.fromisoformat(r["created_at"]), datetime.fromisoformat(r["valid_until"])
        assert until > created, f"recommendation {r['id']} was created expired"
        if r["id"] in before:
            assert r["created_at"] == before[r["id"]]["created_at"]
            continue
        assert created > crashed_at, f"recommendation {r['id']} is dated before the crash"
        target = (*r["target"].values(), r["lever"])
        # a repeat is a second recommendation for a pulse still running when it was made; a later pulse of the
        # same size, after the first one ended, is a new decision
        old = [
            b
            for b in before.values()
            if (*b["target"].values(), b["lever"]) == target
            and b["status"] == "open"
            and datetime.fromisoformat(b["valid_until"]) > created
        ]
        assert not old or old[0]["params"] != r["params"], f"recommendation {r['id']} repeats {old[0]['id']}"
        if r["status"] == "open":
            open_per_target[target] = open_per_target.get(target, 0) + 1
    assert all(n <= 1 for n in open_per_target.values())
    assert {(e["series"]["id"], e["timestamp"]) for e in events} <= {(e["series"]["id"], e["timestamp"]) for e in kept}
