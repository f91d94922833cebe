"""The embedded default in approve mode: recommendations, approval through the API, enactment, kill switch."""

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

import intelligence.runtime.wiring
from api.app import create_app
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock
from tests.driving import drive
from tests.fakes.kernel import MemoryKernel

pytestmark = pytest.mark.e2e

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()
TOKEN = "approver-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def kernel(monkeypatch):
    k = MemoryKernel()
    monkeypatch.setattr(intelligence.runtime.wiring, "_meta_kernel", lambda settings: k)
    return k


@pytest.fixture
def running(tmp_path, kernel):
    token = tmp_path / "token"
    token.write_text(TOKEN)
    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "mlflow.enabled": False,
            "api.token_file": str(token),
            "policy.mode": "approve",
        },
    )
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock)
    with TestClient(create_app(settings, service=svc)) as client:
        yield svc, clock, client
    svc.stop()


def test_approved_recommendations_are_enacted_at_the_next_step(running, kernel):
    svc, clock, client = running

    def running_floors() -> list[dict]:
        # a floor is a pulse: one to approve must still run at the next step (at the clock's time)
        later = datetime.fromtimestamp(clock.now(), UTC).isoformat().replace("+00:00", "Z")
        recs = client.get("/v1/recommendations").json()
        return [r for r in recs if "min_scale" in r["params"] and r["valid_until"] > later]

    drive(svc, clock, 30)
    for _ in range(60):
        if running_floors():
            break
        drive(svc, clock, 1)
    assert kernel.writes == []  # approve mode: nothing without an approval
    floor = running_floors()[0]
    assert client.post(f"/v1/recommendations/{floor['id']}/approve").status_code == 401
    approved = client.post(f"/v1/recommendations/{floor['id']}/approve", json={"by": "alice"}, headers=AUTH)
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert client.post(f"/v1/recommendations/{floor['id']}/approve", headers=AUTH).status_code == 409
    assert client.post("/v1/recommendations/999999/approve", headers=AUTH).status_code == 404
    drive(svc, clock, 1)
    [action] = client.get("/v1/actuator/actions").json()
    assert action["state"] in ("enacted", "released")  # released: its pulse is over, min-scale back to the baseline
    assert action["recommendation_id"] == floor["id"]
    target = floor["target"]
    key = (target["cluster"], target["namespace"], target["workload"])
    assert kernel.writes[0] == (f"min_scale {key}", action["params"]["min_scale"])
    events = [e["event"] for e in client.get("/v1/actuator/audit").json()]
    assert "approved" in events
    assert "enacted" in events


def test_the_kill_switch_stops_enacting_in_every_replica(running, kernel):
    svc, clock, client = running
    drive(svc, clock, 40)
    on = client.post("/v1/actuator/kill-switch", json={"on": True, "reason": "incident 7"}, headers=AUTH)
    assert on.json()["kill_switch"] is True
    rec = client.get("/v1/recommendations").json()[0]
    client.post(f"/v1/recommendations/{rec['id']}/approve", headers=AUTH)
    drive(svc, clock, 2)
    assert kernel.writes == []
    state = client.get("/v1/actuator").json()
    assert (state["kill_switch"], state["kill_switch_reason"], state["adapters"]) == (True, "incident 7", True)
    client.post("/v1/actuator/kill-switch", json={"on": False}, headers=AUTH)
    drive(svc, clock, 1)
    assert len(kernel.writes) == 1


def test_rejected_recommendations_are_not_enacted(running, kernel):
    svc, clock, client = running
    drive(svc, clock, 40)
    rec = client.get("/v1/recommendations").json()[0]
    rejected = client.post(f"/v1/recommendations/{rec['id']}/reject", json={"reason": "peak is a test"}, headers=AUTH)
    assert rejected.json()["status"] == "rejected"
    drive(svc, clock, 1)
    assert kernel.writes == []


def test_the_saturating_edge_cluster_gets_a_move_and_placement_scores(running):
    svc, clock, client = running
    drive(svc, clock, 60)
    scores = client.get("/v1/actuator/placement-scores").json()
    assert set(scores["scores"]) == {"cloud-1", "fog-1", "edge-1"}
    assert scores["scores"]["cloud-1"] > scores["scores"]["edge-1"]
    history = client.get("/v1/recommendations", params={"all": True}).json()
    moves = [r for r in history if r["kind"] == "reallocation"]
    assert moves, "edge-1 (4 cores, growing demand) should be relieved"
    assert all(m["target"]["cluster"] == "edge-1" for m in moves)
    assert moves[0]["explanation"]["rule"] == "reschedule.headroom"
