"""Three service processes as the shards of one fleet, against the test stack's Prometheus servers, PostgreSQL and
MLflow, with a shared checkpoint directory and a fake OCM hub.

The union of the replicas' series is every series and they are disjoint; killing one (the leader, the StatefulSet's
last ordinal) hands leadership over to another; resizing to two rolls out one pod at a time, and the series of the
killed one continue from its checkpoint (what they had learnt, not from nothing) on the survivors: first while it is
absent (taken over by their runner-ups), then as the resize goes on: on the one restarted
with the new count at its start, and on the one still running the old count at run time, as it follows the count in
force; at any time exactly one replica publishes the placement scores.

Each replica is a real ``icos-intel run`` process of this checkout (``python -c`` from the repository root, not the
console script, which may belong to another checkout). The engine's clock is the system clock, as in production, so
the test polls live servers with bounded deadlines.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from intelligence.runtime.checkpoints import checkpoint_name
from intelligence.runtime.ownership import owner
from intelligence.vocabulary import SeriesKey
from models import checkpoint
from tests.fakekube import FakeKube

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SERIES = 7 + 7 + 6  # cpu and memory of 7 workloads, requests of 6 Knative services (see test_real_prometheus)
STEP = 10  # seconds between engine steps: the system clock's tick with real clusters
BACKFILL_HOURS = 4.0  # the first fleet learns this much of the stack's history...
RESIZED_BACKFILL_HOURS = 1.0  # ...the resized one only this much: a series that restarted cold would show it
SCORES = "/addonplacementscores/"


def wait_for(what: str, check: Callable[[], Any], seconds: float = 120.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"not within {seconds:g} s: {what}"
        time.sleep(0.25)  # polling live processes, bounded by the deadline


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


@dataclass
class Replica:
    shard: int
    count: int
    proc: subprocess.Popen[bytes]
    log: Path
    base: str = ""

    def banner(self) -> str | None:
        text = self.log.read_text(errors="replace")
        if self.proc.poll() is not None:
            pytest.fail(f"shard {self.shard}/{self.count} exited ({self.proc.returncode}):\n{text[-4000:]}")
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["health"] and len(words) > 1 and words[1].endswith("/healthz"):
                return words[1].removesuffix("/healthz")
        return None

    def serving(self) -> bool:
        """Past the history backfill: the API answers."""
        try:
            return bool(self.health())
        except OSError:
            return self.banner() is None  # an exit fails the test; otherwise not yet

    def health(self) -> dict[str, Any]:
        return get(f"{self.base}/healthz")

    def stop(self, sig: int = signal.SIGTERM) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=120)
        return self.log.read_text(errors="replace")


@dataclass
class Fleet:
    tmp: Path
    config: Path
    hub: FakeKube
    replicas: dict[int, Replica] = field(default_factory=dict)

    @property
    def checkpoints(self) -> Path:
        return self.tmp / "checkpoints"

    def start(self, shard: int, count: int, backfill_hours: float) -> Replica:
        """Shard ``shard`` of ``count``, as a StatefulSet pod gets it: the ordinal and the replica count."""
        kubeconfig = self.tmp / f"kubeconfig-{shard}"
        kubeconfig.write_text(yaml.safe_dump(hub_kubeconfig(self.hub, f"shard-{shard}-of-{count}")))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ICOS_")},
            "ICOS_ENGINE__SHARD_INDEX": str(shard),
            "ICOS_ENGINE__SHARD_COUNT": str(count),
            "ICOS_KUBERNETES__KUBECONFIG": str(kubeconfig),
            "ICOS_COLLECTION__BACKFILL_HOURS": str(backfill_hours),
        }
        log = self.tmp / f"shard-{shard}-of-{count}.log"
        state = self.tmp / f"state-{shard}"
        command = "from api.cli import main; main()"
        args = ["run", "--config", str(self.config), "--port", "0", "--state-dir", str(state)]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", command, *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        replica = self.replicas[shard] = Replica(shard, count, proc, log)
        return replica

    def ready(self, replica: Replica) -> Replica:
        replica.base = wait_for(f"shard {replica.shard} started", replica.banner, 300)
        wait_for(f"shard {replica.shard} serving", replica.serving, 300)
        return replica

    def stop(self) -> None:
        for replica in self.replicas.values():
            replica.stop(signal.SIGKILL)


def hub_kubeconfig(hub: FakeKube, token: str) -> dict[str, Any]:
    """The hub's context, with a token of this replica's own: the fake logs who wrote what."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "hub", "cluster": {"server": hub.url}}],
        "users": [{"name": "icos", "user": {"token": token}}],
        "contexts": [{"name": "hub", "context": {"cluster": "hub", "user": "icos"}}],
        "current-context": "hub",
    }


def settings(test_stack: Any, database_url: str, checkpoints: Path) -> dict[str, Any]:
    clusters = [
        {"name": c, "url": u, "tier": t, "capacity_cores": cores}
        for (c, u), t, cores in zip(test_stack.prometheus.items(), ("cloud", "fog", "edge"), (16, 8, 4), strict=True)
    ]
    return {
        "clusters": clusters,
        "collection": {"step_seconds": STEP, "reload_config": False},
        "storage": {"database_url": database_url, "checkpoint_dir": str(checkpoints)},
        "models": {"checkpoint_every_steps": 1},
        "engine": {"takeover_after_seconds": 2 * STEP},
        "mlflow": {"tracking_uri": test_stack.mlflow_url, "experiment": f"e2e-shards-{uuid.uuid4().hex[:8]}"},
        "kubernetes": {"hub_context": "hub"},
        # the fleet's own work is enacted (placement scores on the hub); the workloads' floors stay recommendations
        "policy": {
            "mode": "enact",
            "placement_scores": {"publish_every_minutes": STEP / 60.0},
            "overrides": [{"cluster": c["name"], "mode": "recommend"} for c in clusters],
        },
    }


@pytest.fixture
def fleet(test_stack: Any, postgres_db: str, tmp_path: Path) -> Iterator[Fleet]:
    config = tmp_path / "icos.yaml"
    config.write_text(yaml.safe_dump(settings(test_stack, postgres_db, tmp_path / "checkpoints")))
    with FakeKube() as hub:
        running = Fleet(tmp_path, config, hub)
        try:
            yield running
        finally:
            running.stop()


def index_of(fleet: Fleet, shard: int, count: int) -> dict[SeriesKey, tuple[float, int]] | None:
    """The series a shard's checkpoint lists (last learnt, samples learnt), if written by a fleet of ``count``."""
    path = fleet.checkpoints / checkpoint_name(shard)
    if not path.exists():
        return None
    header = checkpoint.read_header(path)
    if header.meta.get("shards") != count or header.series is None:
        return None
    return header.series


def settled(
    fleet: Fleet, count: int, shards: list[int] | None = None
) -> dict[int, dict[SeriesKey, tuple[float, int]]] | None:
    """The checkpoints of ``shards`` (all) of a fleet of ``count``, once they list every series exactly once."""
    indexes = {shard: index_of(fleet, shard, count) for shard in (range(count) if shards is None else shards)}
    if any(index is None for index in indexes.values()):
        return None
    listed = [set(index) for index in indexes.values() if index is not None]
    if sum(len(keys) for keys in listed) != SERIES or len(set().union(*listed)) != SERIES:
        return None
    return {shard: index for shard, index in indexes.items() if index is not None}


def leaders(replicas: list[Replica]) -> list[int]:
    return [r.shard for r in replicas if r.health()["engine"]["leader"]]


def writers(hub: FakeKube, since: int = 0) -> list[str]:
    """Who patched placement scores, in order, from request ``since`` of the hub's log on."""
    return [r.token for r in hub.requests[since:] if r.method == "PATCH" and SCORES in r.path and r.status < 300]


def one_at_a_time(tokens: list[str]) -> bool:
    """Each writer's patches form one unbroken run: never two replicas publishing by turns."""
    runs = [t for i, t in enumerate(tokens) if i == 0 or tokens[i - 1] != t]
    return len(runs) == len(set(runs))


def test_three_shards_then_one_killed_and_two_left(fleet: Fleet, test_stack: Any):
    # the stack's data ends when it was started: reach back from now to that many hours before its end
    lag = max(0.0, time.time() - test_stack.data["end"]) / 3600
    # three shards; the last ordinal starts first, so it is the one that leads
    first = fleet.ready(fleet.start(2, 3, lag + BACKFILL_HOURS))
    wait_for("shard 2 leading", lambda: first.health()["engine"]["leader"])
    three = [first, *(fleet.ready(fleet.start(shard, 3, lag + BACKFILL_HOURS)) for shard in (0, 1))]

    # the union of their series is every series, disjoint, each on the shard its key hashes to
    before = wait_for("three checkpoints that list every series once", lambda: settled(fleet, 3), 300)
    for shard, index in before.items():
        assert index, f"shard {shard} owns nothing"
        assert all(owner(key, 3) == shard for key in index)
        assert all(samples > 0 for _, samples in index.values())
    # any replica answers for any series
    for replica in three:
        assert len(get(f"{replica.base}/v1/forecasts")) == SERIES
        assert replica.health()["engine"]["shard"] == f"{replica.shard}/3"
    assert leaders(three) == [2]
    published = wait_for("placement scores published", lambda: writers(fleet.hub))
    assert set(published) == {"shard-2-of-3"}

    # the leader dies without a word (SIGKILL: no final checkpoint, no goodbye to PostgreSQL)
    killed = index_of(fleet, 2, 3)
    assert killed
    mark = len(fleet.hub.requests)
    first.stop(signal.SIGKILL)
    survivors = three[1:]
    new_leader = wait_for("another shard leading", lambda: leaders(survivors))
    assert len(new_leader) == 1
    successor = fleet.replicas[new_leader[0]]
    # it publishes while the dead shard's last load is fresh, then no more: scores from part of the load would lie
    warning = f"shard {successor.shard}/3: no fresh load from shard(s) 2 of 3"
    wait_for("the successor missing shard 2's load", lambda: warning in successor.log.read_text(errors="replace"))
    assert set(writers(fleet.hub, mark)) <= {f"shard-{successor.shard}-of-3"}
    # once shard 2 has been absent for engine.takeover_after_seconds, the survivors take its series over, each to its
    # runner-up, from its checkpoint and Prometheus' history since: every series is modelled again, once
    taken = wait_for("the survivors' checkpoints listing every series once", lambda: settled(fleet, 3, [0, 1]))
    for key in killed:
        last, samples = taken[owner(key, 3, frozenset({2}))][key]
        assert samples >= killed[key][1]
        assert last >= killed[key][0]
    assert all("no live replica runs shard(s) 2 of 3" in (r.health()["engine"]["last_error"] or "") for r in survivors)

    # resize to two as a StatefulSet rolls it out, one pod at a time: shard 1 restarts with the new count first,
    # while shard 0 still runs with 3. One against one, the newer count is in force: shard 0 follows it at once, as
    # shard 0 of 2, taking its part of the killed shard's series over from its checkpoint and Prometheus' history
    old_0, old_1 = survivors
    old_1.stop(signal.SIGTERM)
    new_1 = fleet.ready(fleet.start(1, 2, lag + RESIZED_BACKFILL_HOURS))
    wait_for("shard 0/3 following", lambda: "shard 0/3 follows the fleet's 2 shards" in old_0.log.read_text("utf-8"))
    following = wait_for("shard 0/3 degraded", lambda: (e := old_0.health()["engine"])["last_error"] and e)
    assert "follows the fleet's 2 shards as shard 0/2" in following["last_error"]
    assert new_1.health()["engine"]["last_error"] is None
    # before shard 0 restarts, every series is modelled again, by one replica, with what it had learnt
    cold = RESIZED_BACKFILL_HOURS * 3600 / STEP + 60  # what a series that lost its state could have learnt by now
    during = wait_for("two checkpoints that list every series once (shard 0 still runs 3)", lambda: settled(fleet, 2))
    assert old_0.proc.poll() is None
    for key in killed:
        last, samples = during[owner(key, 2)][key]
        assert samples >= killed[key][1] > cold, (key, samples, killed[key])
        assert last >= killed[key][0]
    assert "shard 0/3 now models shard 0/2" in old_0.log.read_text("utf-8")
    # then the rollout restarts shard 0 with the new count too
    old_0.stop(signal.SIGTERM)
    two = [fleet.ready(fleet.start(0, 2, lag + RESIZED_BACKFILL_HOURS)), new_1]
    after = wait_for("two checkpoints that list every series once", lambda: settled(fleet, 2), 300)
    for shard, index in after.items():
        assert all(owner(key, 2) == shard for key in index)
    # the killed shard's series go on from its checkpoint, on their new owners: nothing restarts from nothing
    moved = {key: after[owner(key, 2)][key] for key in killed}
    for key, (last, samples) in moved.items():
        assert samples >= killed[key][1] > cold, (key, samples, killed[key])
        assert last >= killed[key][0]
    # taken over while shard 2 was absent, its series were already where a fleet of two puts them (the runner-up)
    logs = "".join(r.log.read_text(errors="replace") for r in [*survivors, *two])
    assert "adopted" in logs
    assert "bank-shard2.pkl (shard 2 of 3)" in logs
    assert len(leaders(two)) == 1
    for replica in two:
        assert len(get(f"{replica.base}/v1/forecasts")) == SERIES

    # over the whole run, one publisher at a time: shard 2, (maybe) its successor, then the resized fleet's leader
    mark = len(fleet.hub.requests)
    wait_for("the resized fleet publishing", lambda: writers(fleet.hub, mark))
    history = writers(fleet.hub)
    assert one_at_a_time(history), history
    assert history[0] == "shard-2-of-3"
    assert {history[-1]} == {f"shard-{shard}-of-2" for shard in leaders(two)}
    for replica in two:
        out = replica.stop(signal.SIGTERM)
        assert replica.proc.returncode == 0, out[-4000:]
        assert "Traceback" not in out
