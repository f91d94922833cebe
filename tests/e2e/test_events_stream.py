"""/v1/events over real HTTP: the server-sent event stream with filters, resuming after Last-Event-ID, and pages."""

from __future__ import annotations

import http.client
import json
import threading
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from api.app import create_app
from intelligence.runtime.wiring import build_service
from intelligence.vocabulary import ManualClock
from tests.driving import drive
from tests.serving import serve

pytestmark = pytest.mark.e2e

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()
RECS = "eu.icos.intelligence.recommendation."


def _stream(base: str, path: str, count: int, headers: dict[str, str] | None = None) -> list[tuple[int, str, dict]]:
    """The first ``count`` events of a stream: (id, event, CloudEvent)."""
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type", "").startswith("text/event-stream")
    out: list[tuple[int, str, dict]] = []
    fields: dict[str, str] = {}
    while len(out) < count:
        line = resp.fp.readline().decode().rstrip("\n")
        if line == "":
            if "data" in fields:
                out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    conn.close()
    return out


@pytest.fixture
def served(embedded_settings):
    clock = ManualClock(START)
    svc = build_service(embedded_settings, clock=clock)
    drive(svc, clock, 40)
    with serve(create_app(embedded_settings, service=svc)) as url:
        yield svc, clock, url
    svc.stop()


def test_the_stream_filters_resumes_and_pages(served):
    svc, _, url = served
    stored = [e for e in svc.outbox.after(0, 10_000) if e.type.startswith(RECS) and e.cluster == "edge-1"]
    assert len(stored) >= 3
    got = _stream(url, f"/v1/events?after=0&type={RECS}&cluster=edge-1", 3)
    assert [g[0] for g in got] == [e.seq for e in stored[:3]]
    for seq, event, ce in got:
        assert event == ce["type"]
        assert ce["type"].startswith(RECS)
        assert ce["icoscluster"] == "edge-1"
        assert ce["icosseq"] == seq
        assert ce["specversion"] == "1.0"
    resumed = _stream(url, f"/v1/events?type={RECS}&cluster=edge-1", 1, {"Last-Event-ID": str(got[1][0])})
    assert resumed[0][0] == got[2][0]

    url_ = urlsplit(url)
    conn = http.client.HTTPConnection(url_.hostname, url_.port, timeout=30)
    conn.request("GET", f"/v1/events?after=0&limit=2&type={RECS}&cluster=edge-1")
    page = conn.getresponse()
    body = json.loads(page.read())
    assert [e["icosseq"] for e in body] == [e.seq for e in stored[:2]]
    assert int(page.getheader("X-Next-After")) == stored[1].seq
    conn.close()


def test_a_new_stream_starts_with_what_happens_next(served):
    svc, clock, url = served
    latest = svc.outbox.latest_seq()
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(_stream(url, "/v1/events", 1)), daemon=True)
    reader.start()
    for _ in range(30):  # engine steps until one raises an event the stream passes on
        drive(svc, clock, 1)
        reader.join(timeout=2)  # polling the reader thread, bounded
        if not reader.is_alive():
            break
    assert got, "no event reached the stream"
    assert got[0][0] > latest
