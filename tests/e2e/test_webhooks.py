"""Webhooks against a receiver the test runs: signed CloudEvents, retried, each accepted once, none lost on restart."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from intelligence.runtime.webhooks import verify
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock
from tests.driving import drive
from tests.polling import wait_for

pytestmark = pytest.mark.e2e

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()
SECRET = "s3cret-of-the-loop"


@dataclass
class Receiver:
    """Accepts signed deliveries with 200; the first ``fail_next`` answer 500; while ``down`` every one 503."""

    fail_next: int = 0
    down: bool = False
    accepted: dict[str, list[str]] = field(default_factory=dict)  # path -> event ids, in order of acceptance
    bodies: dict[str, dict] = field(default_factory=dict)
    refused: int = 0
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def total(self) -> int:
        with self.lock:
            return sum(len(ids) for ids in self.accepted.values())

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            if not verify(SECRET, headers, body, time.time()):
                self.bad_signatures += 1
                return 401
            if self.down or self.fail_next > 0:
                self.fail_next = max(0, self.fail_next - 1)
                self.refused += 1
                return 503 if self.down else 500
            event = json.loads(body)
            assert event["id"] == headers["webhook-id"]
            self.accepted.setdefault(path, []).append(event["id"])
            self.bodies[event["id"]] = event
            return 200


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            code = state.handle(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/hooks"
    server.shutdown()
    server.server_close()


def _settings(tmp_path: Path, url: str):
    secret = tmp_path / "webhook-secret"
    secret.write_text(SECRET + "\n")
    hook = {"secret_file": str(secret), "backoff_seconds": 0.05, "max_backoff_seconds": 0.2}
    return load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "mlflow.enabled": False,
            "events.poll_seconds": 0.05,
            "events.webhooks": [
                {"name": "loop", "url": f"{url}/loop", **hook},
                {
                    "name": "recs-of-edge",
                    "url": f"{url}/recs",
                    "types": ["eu.icos.intelligence.recommendation."],
                    "clusters": ["edge-1"],
                    **hook,
                },
            ],
        },
    )


def test_a_receiver_failing_three_times_and_a_restart_lose_no_event_and_repeat_none(tmp_path, receiver):
    state, url = receiver
    state.fail_next = 3
    settings = _settings(tmp_path, url)
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock)
    assert svc.deliverer is not None
    svc.deliverer.start()
    wait_for(lambda: len(svc.outbox.subscribers()) == 2, "both subscribers registered")  # type: ignore[union-attr]
    drive(svc, clock, 30)
    wait_for(lambda: state.total() >= 5, "deliveries after three failures")
    assert state.refused >= 3
    state.down = True  # the receiver goes away; events pile up in the outbox
    drive(svc, clock, 8)
    svc.stop()

    state.down = False
    again = build_service(settings, clock=ManualClock(clock.now()))
    outbox = again.outbox
    assert outbox is not None
    assert again.deliverer is not None
    assert len(outbox.after(0, 100_000)) > state.total(), "the outage should have left events to deliver"
    again.deliverer.start()
    try:
        drive(again, clock, 3)
        every = outbox.after(0, 100_000)
        wanted = {
            "/hooks/loop": [e.id for e in every],
            "/hooks/recs": [
                e.id
                for e in every
                if e.type.startswith("eu.icos.intelligence.recommendation.") and e.cluster == "edge-1"
            ],
        }
        wait_for(lambda: state.total() >= sum(len(ids) for ids in wanted.values()), "every event delivered", 120)
    finally:
        again.stop()
    assert state.bad_signatures == 0
    assert wanted["/hooks/recs"], "edge-1 should have had recommendations"
    # each subscriber got each of its events exactly once, in the outbox's order: none lost, none repeated
    assert state.accepted == wanted
    types = {state.bodies[i]["type"] for i in wanted["/hooks/loop"]}
    assert {"eu.icos.intelligence.recommendation.opened", "eu.icos.intelligence.cluster.health.changed"} <= types
    one = state.bodies[wanted["/hooks/loop"][0]]
    assert (one["specversion"], one["source"], one["icostimebasis"]) == ("1.0", "/icos-intelligence", "simulated")
