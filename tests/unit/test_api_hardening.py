"""The hardened API: tokens before bodies, Bearer required, body limits, times, ids, pages, probes, redaction."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sys
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli.run import listen_socket, settle_for_serving
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock
from tests.driving import drive

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()


@pytest.fixture
def app_and_service(tmp_path):
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "alice").write_text("alice-token")
    (tmp_path / "tokens" / "remediation-loop").write_text("loop-token")
    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(tmp_path / "state"),
            "mlflow.enabled": False,
            "api.tokens_dir": str(tmp_path / "tokens"),
            "api.max_body_bytes": 2048,
        },
    )
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock)
    yield create_app(settings, service=svc), svc, clock
    svc.stop()


@pytest.fixture
def client(app_and_service):
    app, svc, clock = app_and_service
    drive(svc, clock, 30)
    with TestClient(app) as c:
        yield c


ALICE = {"Authorization": "Bearer alice-token"}


def test_a_bare_token_or_a_wrong_one_is_refused_and_bearer_is_required(client):
    for headers in ({}, {"Authorization": "alice-token"}, {"Authorization": "Basic alice-token"}, ALICE | {}):
        r = client.post("/v1/actuator/kill-switch", json={"on": False}, headers=headers)
        assert r.status_code == (200 if headers == ALICE else 401), headers
    assert client.get("/v1/whoami", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/v1/whoami", headers={"Authorization": "bearer loop-token"}).json() == {
        "name": "remediation-loop"
    }


def test_the_token_is_checked_before_the_body_is_read(app_and_service):
    app, _, _ = app_and_service
    read: list[bytes] = []
    sent: list[dict] = []

    async def receive():
        read.append(b"x")
        return {"type": "http.request", "body": b'{"on": true}', "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/actuator/kill-switch",
        "raw_path": b"/v1/actuator/kill-switch",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"12")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 401
    assert read == []  # not one byte of the body was asked for


def test_bodies_over_the_limit_are_refused_by_length_and_while_streaming(client):
    big = b'{"on": true, "reason": "' + b"x" * 4000 + b'"}'
    r = client.post("/v1/actuator/kill-switch", content=big, headers=ALICE | {"Content-Type": "application/json"})
    assert r.status_code == 413

    def chunks():
        yield big[:1000]
        yield big[1000:]

    r = client.post("/v1/actuator/kill-switch", content=chunks(), headers=ALICE | {"Content-Type": "application/json"})
    assert r.status_code == 413
    assert client.get("/v1/actuator").json()["kill_switch"] is False


def test_who_acted_comes_from_the_token_not_the_body(client):
    r = client.post("/v1/actuator/kill-switch", json={"on": True, "reason": "drill", "by": "mallory"}, headers=ALICE)
    assert r.status_code == 200
    [entry] = client.get("/v1/actuator/audit", params={"limit": 1}).json()
    assert entry["event"] == "kill-switch-on"
    assert entry["detail"]["by"] == "alice"
    assert entry["at"].endswith("Z")


def test_times_without_a_zone_are_utc_and_out_of_range_ones_are_422(client):
    assert client.get("/v1/anomalies", params={"since": "0001-01-01T00:00:00"}).status_code == 422
    assert client.get("/v1/anomalies", params={"since": "9999-12-31T23:59:59+14:00"}).status_code == 422
    assert client.get("/v1/anomalies", params={"since": "0001-01-01T00:00:00-14:00"}).status_code == 422
    all_ = client.get("/v1/anomalies", params={"limit": 1000}).json()
    assert all_
    cut = all_[len(all_) // 2]["timestamp"]  # ...Z
    naive = cut.removesuffix("Z")
    as_utc = client.get("/v1/anomalies", params={"since": cut, "limit": 1000}).json()
    as_naive = client.get("/v1/anomalies", params={"since": naive, "limit": 1000}).json()
    assert as_naive == as_utc


def test_ids_are_bounded(client):
    for rec_id in (2**63, 2**31, 0, -1):
        assert client.post(f"/v1/recommendations/{rec_id}/approve", headers=ALICE).status_code == 422
    assert client.post(f"/v1/recommendations/{2**31 - 1}/approve", headers=ALICE).status_code == 404


def test_lists_are_pages_with_the_total_and_the_next_link(client):
    first = client.get("/v1/forecasts", params={"limit": 7})
    assert first.headers["X-Total-Count"] == "20"
    assert len(first.json()) == 7
    seen = [f["series"]["id"] for f in first.json()]
    link = first.headers["Link"]
    while link:
        nxt = client.get(link.split(";")[0].strip("<>"))
        seen += [f["series"]["id"] for f in nxt.json()]
        link = nxt.headers.get("Link", "")
    assert len(seen) == len(set(seen)) == 20
    recs = client.get("/v1/recommendations", params={"all": True, "limit": 2, "offset": 1})
    assert int(recs.headers["X-Total-Count"]) >= 3
    assert len(recs.json()) == 2


def test_units_and_the_time_basis_are_said(client):
    r = client.get("/v1/forecasts", params={"signal": "memory", "limit": 1})
    assert r.headers["X-ICOS-Time-Basis"] == "simulated"
    assert r.json()[0]["unit"] == "bytes"
    assert client.get("/healthz").json()["time_basis"] == "simulated"
    accuracy = {m["signal"]: m for m in client.get("/v1/models/accuracy").json()}
    assert accuracy["cpu"]["unit"] == "cores"
    assert accuracy["requests"]["unit"] == "requests/s"
    assert accuracy["memory"]["champion"]["mae"] > accuracy["cpu"]["champion"]["mae"]  # bytes against cores


def test_readiness_waits_for_the_first_step_and_for_a_cluster_that_answers(app_and_service):
    app, svc, clock = app_and_service
    with TestClient(app) as c:
        assert c.get("/readyz").status_code == 503
        assert c.get("/healthz").status_code == 200  # alive all the same
        drive(svc, clock, 1)
        ready = c.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["answering"] == 3


def test_the_access_log_names_the_caller_and_never_the_token(client, caplog):
    with caplog.at_level(logging.INFO, logger="icos.access"):
        client.post("/v1/actuator/kill-switch", json={"on": False}, headers=ALICE)
        client.get("/v1/forecasts", params={"limit": 1})
    lines = [r.getMessage() for r in caplog.records if r.name == "icos.access"]
    assert any('"POST /v1/actuator/kill-switch" 200' in line and "caller=alice" in line for line in lines)
    assert any('"GET /v1/forecasts?limit=1" 200' in line for line in lines)
    assert not any("alice-token" in line for line in lines)


def test_the_docs_and_the_page_are_served_from_the_package(client):
    docs = client.get("/docs").text
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in docs
    assert "cdn" not in docs.lower()
    for path in ("/static/vendor/swagger-ui/swagger-ui-bundle.js", "/static/vendor/uplot/uPlot.iife.min.js", "/"):
        assert client.get(path).status_code == 200
    page = client.get("/").text
    assert "http" not in page.replace("http-equiv", "")  # no script or style from elsewhere
    schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    approve = schema["paths"]["/v1/recommendations/{rec_id}/approve"]["post"]
    assert approve["security"] == [{"bearer": []}]
    assert {"401", "403", "404", "409", "413", "422"} <= set(approve["responses"])


def test_accepted_connections_get_tcp_nodelay():
    """asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP; listen_socket makes sure of it."""
    seen: list[int] = []

    async def main() -> None:
        sock = listen_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        done = asyncio.Event()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport) -> None:  # type: ignore[override]
                s = transport.get_extra_info("socket")
                seen.append(s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()
                done.set()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.wait_for(done.wait(), 10)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())
    assert seen == [1]


def test_settling_for_serving_freezes_what_start_up_built_and_shortens_the_switch_interval():
    """After the warm-up, a full collection must not walk the built service, nor a step hold the interpreter 5 ms."""
    built = [{"model": i} for i in range(1000)]  # long-lived, as a built service's state is
    interval = sys.getswitchinterval()
    try:
        settle_for_serving(0.5)
        assert gc.get_freeze_count() >= len(built)
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    finally:
        gc.unfreeze()
        sys.setswitchinterval(interval)
