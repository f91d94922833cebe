"""Collector benchmark: conversion speed, and an end-to-end pull from three real Prometheus servers.

    .venv/bin/python -m tests.bench.bench_collectors [--series 1000] [--hours 6] [--step 15] [--json FILE]

1. Conversion of range-query JSON into the internal form, on one core: JSON bytes ->
   (orjson) -> ``convert_matrix`` -> float arrays per series; stdlib json shown for comparison.
2. End-to-end: three Prometheus servers (Debian's package, loopback), each backfilled by
   promtool with ``--series`` gauges over ``--hours`` at ``--step``; one backfill pull of all
   three in parallel, split into the time the server took (request until the last byte)
   and ours (JSON parsing and conversion).
Prints a table and writes JSON (default bench-results/collectors.json).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson

from collectors.prometheus import ClusterTarget, CollectionSpec, PrometheusCollector, RawMatrix, Signal, convert_matrix
from intelligence.vocabulary import Tier
from tests import stack

SIGNAL = Signal("bench", "bench_metric", ("namespace", "workload"))


def synthetic_body(series: int, points: int) -> bytes:
    rng = np.random.default_rng(0)
    result = []
    for j in range(series):
        values = rng.normal(100, 10, points)
        result.append(
            {
                "metric": {"__name__": "bench_metric", "namespace": f"ns{j % 10}", "workload": f"w{j}"},
                "values": [[1_767_225_600 + 15 * i, repr(float(v))] for i, v in enumerate(values)],
            }
        )
    body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    return json.dumps(body, separators=(",", ":")).encode()  # compact, as Prometheus writes it


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench_conversion(series: int, points: int) -> dict[str, float]:
    body = synthetic_body(series, points)
    n = series * points
    parsed = orjson.loads(body)["data"]["result"]
    t_raw = best_of(lambda: convert_matrix("c", SIGNAL, RawMatrix(body)))
    t_orjson = best_of(lambda: orjson.loads(body))
    t_json = best_of(lambda: json.loads(body), repeat=3)
    t_convert = best_of(lambda: convert_matrix("c", SIGNAL, parsed))
    return {
        "samples": n,
        "body_mb": len(body) / 1e6,
        "raw_bytes_to_arrays_samples_per_s": n / t_raw,
        "orjson_plus_generic_convert_samples_per_s": n / (t_orjson + t_convert),
        "stdlib_json_plus_generic_convert_samples_per_s": n / (t_json + t_convert),
    }


def openmetrics(series: int, start: int, end: int, step: int, path: Path) -> None:
    rng = np.random.default_rng(1)
    ts = np.arange(start, end + 1, step)
    with path.open("w") as fh:
        fh.write("# TYPE bench_metric gauge\n")
        for j in range(series):
            values = 100 + 10 * np.sin(ts / 3600.0 + j) + rng.normal(0, 1, ts.size)
            labels = f'namespace="ns{j % 10}",workload="w{j}"'
            fh.writelines(f"bench_metric{{{labels}}} {v:.3f} {t}\n" for t, v in zip(ts, values, strict=True))
        fh.write("# EOF\n")


def bench_pull(series: int, hours: float, step: int, workdir: Path) -> dict[str, float]:
    end = math.floor(time.time() / step) * step - 600
    start = int(end - hours * 3600)
    servers, procs = {}, []
    try:
        for name in ("bench-a", "bench-b", "bench-c"):
            base = workdir / name
            shutil.rmtree(base, ignore_errors=True)
            (base / "data").mkdir(parents=True)
            om = base / "data.om"
            t = time.perf_counter()
            openmetrics(series, start, end, step, om)
            subprocess.run(
                [
                    stack.find_binary("promtool"),
                    "tsdb",
                    "create-blocks-from",
                    "openmetrics",
                    str(om),
                    str(base / "data"),
                ],
                check=True,
                capture_output=True,
            )
            om.unlink()
            (base / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
            port = stack.free_port()
            procs.append(stack.serve_prometheus(base, port, f"Prometheus {name}"))
            servers[name] = f"http://127.0.0.1:{port}"
            print(f"  {name}: {series} series x {hours:g} h loaded in {time.perf_counter() - t:.1f}s", file=sys.stderr)
        targets = [ClusterTarget(n, Tier.CLOUD, u, timeout_seconds=120, retries=0) for n, u in servers.items()]
        runs = []
        for workers in (3, 3, 1, 1):
            spec = CollectionSpec(
                step_seconds=step, rate_window="5m", backfill_seconds=hours * 3600, max_workers=workers
            )
            col = PrometheusCollector(targets, [SIGNAL], spec)
            t = time.perf_counter()
            result = col.backfill(end)
            wall = time.perf_counter() - t
            sessions = [p.transport.session for p in col._pollers.values()]
            samples = sum(len(b) for b in result.batches)
            http = sum(s.http_seconds for s in sessions)
            parse = sum(s.parse_seconds for s in sessions)
            latency = sum(p.health.latency_seconds or 0 for p in col._pollers.values())
            runs.append(
                {
                    "workers": workers,
                    "wall_seconds": wall,
                    "samples": samples,
                    "series": len(result.batches),
                    "server_seconds_sum": http,
                    "ours_seconds_sum": latency - http,
                    "json_parse_seconds_sum": parse,
                }
            )
            col.close()
        parallel = min((r for r in runs if r["workers"] == 3), key=lambda r: r["wall_seconds"])
        sequential = min((r for r in runs if r["workers"] == 1), key=lambda r: r["wall_seconds"])
        return {
            **parallel,
            "samples_per_s_wall": parallel["samples"] / parallel["wall_seconds"],
            "sequential": sequential,
            "sequential_server_share": sequential["server_seconds_sum"] / sequential["wall_seconds"],
            "sequential_ours_samples_per_s": sequential["samples"] / sequential["ours_seconds_sum"],
        }
    finally:
        for p in procs:
            stack.stop_group(p.pid)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=6.0)
    ap.add_argument("--step", type=int, default=15)
    ap.add_argument("--json", type=Path, default=Path("bench-results/collectors.json"))
    ap.add_argument("--workdir", type=Path, default=Path("tests/.stack/bench"))
    args = ap.parse_args()
    points = int(args.hours * 3600 / args.step) + 1
    print("conversion (one core)...", file=sys.stderr)
    conv = bench_conversion(args.series, points)
    print("end-to-end pull (3 local Prometheus servers)...", file=sys.stderr)
    pull = bench_pull(args.series, args.hours, args.step, args.workdir)
    seq = pull["sequential"]
    mps = 1e6
    rows = [
        ("JSON bytes -> arrays, RawMatrix (what runs)", f"{conv['raw_bytes_to_arrays_samples_per_s'] / mps:.2f} M/s"),
        ("orjson + generic conversion", f"{conv['orjson_plus_generic_convert_samples_per_s'] / mps:.2f} M/s"),
        (
            "stdlib json + generic (library default)",
            f"{conv['stdlib_json_plus_generic_convert_samples_per_s'] / mps:.2f} M/s",
        ),
        (
            f"pull 3 x {args.series} x {args.hours:g} h @ {args.step}s, parallel",
            f"{pull['samples']:,} samples in {pull['wall_seconds']:.2f}s ({pull['samples_per_s_wall'] / mps:.2f} M/s)",
        ),
        ("same, one cluster at a time", f"{seq['wall_seconds']:.2f}s wall"),
        (
            "  of which the servers (request to last byte)",
            f"{seq['server_seconds_sum']:.2f}s ({100 * pull['sequential_server_share']:.0f}%)",
        ),
        (
            "  of which ours (parse + convert)",
            f"{seq['ours_seconds_sum']:.2f}s ({pull['sequential_ours_samples_per_s'] / mps:.2f} M/s)",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\n{'collector benchmark':<{width}}  result\n{'-' * width}  {'-' * 30}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"conversion": conv, "pull": pull, "args": {k: str(v) for k, v in vars(args).items()}}, indent=2)
    )
    print(f"\nwritten {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
