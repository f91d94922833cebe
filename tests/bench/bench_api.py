"""API benchmark: latency at a fixed request rate, /metrics render time, the page's time to first chart.

    .venv/bin/python -m tests.bench.bench_api [--rate 200] [--seconds 15] [--json FILE]

1. Latency: a server process (one uvicorn worker, the embedded default driven a few steps,
   plus synthetic forecasts: 1,000 series in all) and an open-loop load generator on loopback
   (asyncio, keep-alive connections): requests are *scheduled* at ``--rate`` per second and
   each latency is counted from its scheduled time, so a slow answer also delays the next
   ones (no coordinated omission). GET one series' forecast, and a selector of 100 series.
   The server settles as ``icos-intel run`` does (api.cli.run.settle_for_serving). Run again while the engine
   steps in the server's own thread (the embedded default's pace), and with the listening socket as it was
   before (no IPPROTO_TCP: no TCP_NODELAY).
2. /metrics: render time with the default export (3 horizons x the band), at 1,000 and
   10,000 series: a render after a new step (cold) and a scrape served from the cache.
3. The page: time to first chart (navigation start to the first uPlot drawn with data) in
   Debian's headless Chromium, on the embedded default, 5 loads.
Prints a table and writes JSON (default bench-results/api.json). Nothing here is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()
ONE = "/v1/forecasts?cluster=bench-0&signal=cpu&namespace=ns-0&workload=w-0"
HUNDRED = "/v1/forecasts?cluster=bench-0&signal=cpu&limit=100"
CONNECTIONS = 16  # keep-alive connections of the load generator (without TCP_NODELAY each can do ~25 requests/s)


# -- the service with synthetic series ---------------------------------------------------------------


def build(state: Path, series: int, clusters: int = 10):
    """The embedded default driven 3 steps, plus ``series`` synthetic series (forecasts, scores, samples)."""
    from intelligence.runtime.wiring import build_service
    from intelligence.settings import load_settings
    from intelligence.vocabulary import AnomalyReason, AnomalyScore, Forecast, ManualClock, SeriesBatch, SeriesKey
    from tests.driving import drive

    settings = load_settings(None, **{"storage.state_dir": str(state), "mlflow.enabled": False})
    clock = ManualClock(START)
    svc = build_service(settings, clock=clock)
    drive(svc, clock, 3)
    rng = np.random.default_rng(0)
    now = clock.now()
    forecasts, scores, batches = [], [], []
    for i in range(series):
        key = SeriesKey.of(
            f"bench-{i % clusters}", "cpu", {"namespace": f"ns-{i // clusters % 10}", "workload": f"w-{i // clusters}"}
        )
        point = tuple(float(v) for v in rng.uniform(0.1, 4.0, 12))
        band = {0.05: tuple(p * 0.8 for p in point), 0.95: tuple(p * 1.2 for p in point)}
        forecasts.append(Forecast(key, now, 300.0, point, band, "bench", tuple(p * 1.3 for p in point)))
        scores.append(AnomalyScore(key, now, float(rng.uniform(0, 1)), AnomalyReason("bench", point[0])))
        batches.append(SeriesBatch(key, np.array([now]), np.array([point[0]])))
    svc.engine.forecasts.put_many(forecasts)
    svc.engine.anomalies.put_many(scores)
    assert svc.engine.history is not None
    svc.engine.history.record(batches, forecasts)
    return settings, svc


def serve(port: int, series: int, nodelay: bool, stepping: bool) -> None:
    """The server process of the latency benchmark: as ``icos-intel run`` serves, after its warm-up.

    ``stepping``: meanwhile the engine steps in a thread of this process, as the runner does on the embedded
    default (a step every ``step_seconds / speed`` real seconds: 0.33 s), each step learning the embedded
    default's 20 series and publishing its forecasts and decisions.
    """
    import logging
    import threading

    import uvicorn

    from api.app import create_app
    from api.cli.run import listen_socket, settle_for_serving
    from intelligence.vocabulary import ManualClock
    from tests.driving import drive

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("icos.access").setLevel(logging.INFO)  # as in production: the access log is on
    logging.getLogger("icos.access").handlers = [logging.FileHandler(os.devnull)]
    logging.getLogger("icos.access").propagate = False
    with tempfile.TemporaryDirectory() as state:
        settings, svc = build(Path(state), series)
        if nodelay:
            sock = listen_socket("127.0.0.1", port)
        else:  # the socket as api/cli/run.py made it before: no IPPROTO_TCP, so asyncio sets no TCP_NODELAY
            sock = socket.socket(socket.AF_INET)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(2048)
        app = create_app(settings, service=svc)
        settle_for_serving(settings.api.switch_interval_ms)
        if stepping:
            tick = settings.simulation.step_seconds / settings.simulation.speed
            clock = ManualClock(START + 3 * settings.simulation.step_seconds)

            def steps() -> None:
                while True:
                    begun = time.monotonic()
                    drive(svc, clock, 1)
                    time.sleep(max(0.0, tick - (time.monotonic() - begun)))  # the runner's pace, in real time

            threading.Thread(target=steps, name="engine", daemon=True).start()
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")).run(sockets=[sock])


# -- the load generator ----------------------------------------------------------------------------------


async def _load(port: int, path: str, rate: float, seconds: float, connections: int) -> list[float]:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode()
    total = int(rate * seconds)
    t0 = time.perf_counter() + 0.2
    latencies: list[float] = []

    async def worker(k: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(k, total, connections):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
            )
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)
        writer.close()

    await asyncio.gather(*(worker(k) for k in range(connections)))
    return latencies


async def _sequential(port: int, path: str, count: int) -> list[float]:
    """One keep-alive connection, one request at a time: what a dashboard or a loop polling one series sees."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies = []
    for _ in range(count):
        t = time.perf_counter()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        await reader.readexactly(int(length.split(b":")[1]))
        latencies.append(time.perf_counter() - t)
    writer.close()
    return latencies


def _quantiles(latencies: list[float]) -> dict[str, float]:
    a = np.array(latencies) * 1000
    return {
        "n": len(a),
        "p50_ms": float(np.percentile(a, 50)),
        "p90_ms": float(np.percentile(a, 90)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a.max()),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)  # polling the server's readiness
    raise SystemExit(f"no answer from {url}")


def bench_latency(rate: float, seconds: float, series: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    runs = (("", []), (", while the engine steps", ["--stepping"]), (", no TCP_NODELAY", ["--no-nodelay"]))
    for suffix, flags in runs:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bench_api", "--serve", str(port), "--series", str(series), *flags]
        )
        try:
            _wait(f"http://127.0.0.1:{port}/readyz", proc)
            for name, path in (("one series", ONE), ("100-series selector", HUNDRED)):
                asyncio.run(_load(port, path, rate, 2, CONNECTIONS))  # warm-up
                out[f"{name}{suffix}"] = _quantiles(asyncio.run(_load(port, path, rate, seconds, CONNECTIONS)))
            if "--stepping" not in flags:
                out[f"one series, sequential{suffix}"] = _quantiles(asyncio.run(_sequential(port, ONE, 500)))
        finally:
            proc.terminate()
            proc.wait(30)
    return out


# -- /metrics ---------------------------------------------------------------------------------------


def bench_metrics(sizes: list[int]) -> dict[str, Any]:
    from api.metrics import Export, MetricsRenderer
    from intelligence.runtime.facade import ServiceFacade

    out: dict[str, Any] = {}
    for n in sizes:
        with tempfile.TemporaryDirectory() as state:
            _, svc = build(Path(state), n)
            renderer = MetricsRenderer(ServiceFacade(svc), Export(), svc.registry)
            cold = []
            for _ in range(5):
                t = time.perf_counter()
                text = "".join(renderer._render()).encode()
                cold.append(time.perf_counter() - t)
            renderer.service_families()
            warm = []
            for _ in range(20):
                t = time.perf_counter()
                body = renderer.render()
                warm.append(time.perf_counter() - t)
            lines = sum(1 for line in text.splitlines() if line and not line.startswith(b"#"))
            out[f"{n + 20} series"] = {
                "samples": lines,
                "bytes": len(body),
                "render_after_a_step_ms": 1000 * statistics.median(cold),
                "scrape_from_cache_ms": 1000 * statistics.median(warm),
            }
            svc.stop()
    return out


# -- the page -----------------------------------------------------------------------------------------


def bench_page(loads: int = 5) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from api.app import create_app
    from tests.serving import serve as serve_in_thread

    with tempfile.TemporaryDirectory() as state:
        settings, svc = build(Path(state), 0)
        from intelligence.vocabulary import ManualClock
        from tests.driving import drive

        drive(svc, ManualClock(START + 3 * 300), 37)
        chart, dom = [], []
        with serve_in_thread(create_app(settings, service=svc)) as url, sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium",
                args=["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
            )
            for _ in range(loads):
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(url)
                page.wait_for_selector("#chart[data-ready='1']", timeout=30_000)
                chart.append(page.evaluate("window.__icos.firstChartMs"))
                dom.append(page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))
                page.close()
            browser.close()
        svc.stop()
    return {
        "time_to_first_chart_ms": {"median": statistics.median(chart), "max": max(chart)},
        "dom_content_loaded_ms": {"median": statistics.median(dom), "max": max(dom)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--series", type=int, default=980, help="synthetic series next to the embedded 20")
    parser.add_argument("--json", type=Path, default=Path("bench-results/api.json"))
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-nodelay", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stepping", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.series, not args.no_nodelay, args.stepping)
        return
    results = {
        "latency": bench_latency(args.rate, args.seconds, args.series),
        "metrics": bench_metrics([980, 9980]),
        "page": bench_page(),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "load_average": os.getloadavg()},
        "rate_per_second": args.rate,
    }
    load = results["machine"]["load_average"]
    print(
        f"\nLoad average of the machine at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} ({os.cpu_count()} cores)"
    )
    print(f"Latency at {args.rate:g} requests/s, open loop, {CONNECTIONS} keep-alive connections, one uvicorn worker:")
    print(f"  {'request':<40} {'n':>6} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, q in results["latency"].items():
        print(
            f"  {name:<40} {q['n']:>6} {q['p50_ms']:>8.2f} {q['p90_ms']:>8.2f} {q['p99_ms']:>8.2f} {q['max_ms']:>8.2f}"
        )
    print("\n/metrics with the default export:")
    print(f"  {'series':<14} {'samples':>8} {'bytes':>10} {'render after a step ms':>24} {'scrape from cache ms':>22}")
    for name, m in results["metrics"].items():
        cold, warm = m["render_after_a_step_ms"], m["scrape_from_cache_ms"]
        print(f"  {name:<14} {m['samples']:>8} {m['bytes']:>10} {cold:>24.1f} {warm:>22.2f}")
    page = results["page"]
    print("\nThe page (embedded default, headless Chromium, 5 loads):")
    first = page["time_to_first_chart_ms"]
    print(f"  time to first chart: median {first['median']:.0f} ms, max {first['max']:.0f} ms")
    print(f"  DOMContentLoaded:    median {page['dom_content_loaded_ms']['median']:.0f} ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
