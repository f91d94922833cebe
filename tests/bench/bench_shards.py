"""Sharding benchmark: several shards of one fleet on this machine, against local Prometheus servers.

    .venv/bin/python -m tests.bench.bench_shards [--workloads 1000] [--hours 6] [--steps 10] [--shards 1 2 4]
                                                 [--json bench-results/shards.json]

Three Prometheus servers (Debian's package, loopback), one per cluster, each backfilled by
promtool with ``--workloads`` workloads of two signals (``cpu``, ``requests``) at a 60 s step
over ``--hours`` plus ``--steps`` steps. For each fleet size, that many shard processes run the
real engine (``build_service``: the Prometheus collector, the model bank, the planner, the
actuator in recommend mode, the decision database on the stack's PostgreSQL with leadership,
load parts and shared forecasts) with an injected clock:

1. warm-up: each shard backfills ``--hours`` of history and learns the samples of its series
   (the history every replica learns at start): samples per second, per shard and for the fleet;
2. steps: once every shard is warm (a barrier), each runs ``--steps`` engine steps as fast as it
   can, each step pulling one new sample of every series: the step time, split into the pull
   (every replica pulls every cluster) and the rest (learn, forecast, decide, share, act);
3. takeover (two shards or more): the last shard then leaves the fleet, and the others step on
   until they have taken its series over (``engine.takeover_after_seconds`` is one step): the
   series taken and the time of the step that adopts them from its checkpoint and replays their
   history since.

The memory per series is the growth of the resident set over the warm-up divided by the series
owned (one shard). Then a projection per replica for ``--project`` series (1 million) at the
default 60 s step. Needs the test stack's PostgreSQL (``make stack-up``). Prints a table and
writes JSON (default bench-results/shards.json).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from tests import stack

STEP = 60
CLUSTERS = ("bench-cloud", "bench-fog", "bench-edge")
SIGNALS = [
    {"name": "cpu", "unit": "cores", "query": "sum by (namespace, workload) (bench_cpu{{{selector_bare}}})"},
    {
        "name": "requests",
        "unit": "requests/s",
        "query": "sum by (namespace, workload) (bench_requests{{{selector_bare}}})",
    },
]
GO = "go"
GONE = "gone"  # the last shard has left the fleet
KNATIVE_EVERY = 10  # one workload in ten is a Knative service with a request rate (its floor is decided)


def series_per_cluster(workloads: int) -> int:
    return workloads + len(range(0, workloads, KNATIVE_EVERY))


# -- the Prometheus servers -------------------------------------------------------------------------


def openmetrics(cluster: int, workloads: int, start: int, end: int, path: Path) -> None:
    rng = np.random.default_rng(cluster)
    ts = np.arange(start, end + 1, STEP)
    day = 2 * np.pi * ts / 86_400.0
    with path.open("w") as fh:
        for metric, scale, every in (("bench_cpu", 0.5, 1), ("bench_requests", 20.0, KNATIVE_EVERY)):
            fh.write(f"# TYPE {metric} gauge\n")
            for j in range(0, workloads, every):
                level = scale * (1.0 + j % 7)
                values = level * (1.2 + np.sin(day + j)) + rng.normal(0, 0.05 * level, ts.size)
                labels = f'namespace="ns{j % 10}",workload="w{j}"'
                fh.writelines(f"{metric}{{{labels}}} {v:.4f} {t}\n" for t, v in zip(ts, values, strict=True))
        fh.write("# EOF\n")


def start_servers(workloads: int, start: int, end: int, workdir: Path) -> tuple[dict[str, str], list[Any]]:
    servers, procs = {}, []
    for i, name in enumerate(CLUSTERS):
        base = workdir / name
        shutil.rmtree(base, ignore_errors=True)
        (base / "data").mkdir(parents=True)
        om = base / "data.om"
        t = time.perf_counter()
        openmetrics(i, workloads, start, end, om)
        promtool = stack.find_binary("promtool")
        subprocess.run(
            [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(base / "data")],
            check=True,
            capture_output=True,
        )
        om.unlink()
        (base / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
        port = stack.free_port()
        procs.append(stack.serve_prometheus(base, port, f"Prometheus {name}"))
        servers[name] = f"http://127.0.0.1:{port}"
        print(
            f"  {name}: {series_per_cluster(workloads)} series loaded in {time.perf_counter() - t:.1f}s",
            file=sys.stderr,
        )
    return servers, procs


# -- one shard (a worker process) -------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Timed:
    """Seconds spent in some methods of the engine's parts, summed (wrapped on the instances)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, what: str, obj: Any, *names: str) -> None:
        for name in names:
            method = getattr(obj, name)

            def timed(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
                t = time.perf_counter()
                try:
                    return _method(*args, **kwargs)
                finally:
                    self.seconds[what] = self.seconds.get(what, 0.0) + time.perf_counter() - t

            setattr(obj, name, timed)

    def take(self) -> dict[str, float]:
        taken, self.seconds = self.seconds, {}
        return taken


def worker(config: Path, shard: int, shards: int, start: float, steps: int, barrier: Path) -> dict[str, Any]:
    """Warm up shard ``shard`` of ``shards``, wait for the others, run ``steps`` steps; what it measured."""
    from intelligence.runtime.wiring import build_service
    from intelligence.settings import load_settings
    from intelligence.vocabulary import ManualClock

    settings = load_settings(
        config,
        **{
            "engine.shard_index": shard,
            "engine.shard_count": shards,
            "storage.state_dir": str(barrier.parent / f"state-{shards}-{shard}"),
        },
    )
    baseline = rss_bytes()
    clock = ManualClock(start)
    service = build_service(settings, clock=clock, with_tracker=False)
    engine = service.engine
    timed = Timed()
    timed.wrap("models", engine.bank, "observe_many", "forecast_many")
    timed.wrap("act", engine.actuator, "handle", "publish_scores")
    if engine.replica.latest is not None and engine.replica.loads is not None:
        timed.wrap("share", engine.replica.latest, "put")
        timed.wrap("share", engine.replica.loads, "write", "read")
    try:
        cpu = time.process_time()
        wall = time.perf_counter()
        warm = service.warm_up()
        warm_wall, warm_cpu = time.perf_counter() - wall, time.process_time() - cpu
        warm_parts = timed.take()
        series = len(engine.bank)
        grown = rss_bytes() - baseline
        (barrier.parent / f"ready-{shards}-{shard}").touch()
        while not barrier.exists():
            time.sleep(0.01)  # waiting for the other shards' warm-up, bounded by the parent's deadline
        pulls, rest, totals, samples = [], [], [], 0
        parts: dict[str, list[float]] = {"models": [], "share": [], "act": []}
        cpu = time.process_time()
        began = time.perf_counter()
        for _ in range(steps):
            clock.advance(STEP)
            now = clock.now()
            t0 = time.perf_counter()
            result = engine.collector.pull(now)
            t1 = time.perf_counter()
            report = engine.process(result, now)
            t2 = time.perf_counter()
            pulls.append(t1 - t0)
            rest.append(t2 - t1)
            totals.append(t2 - t0)
            samples += report.samples
            taken = timed.take()
            for what, seconds in parts.items():
                seconds.append(taken.get(what, 0.0))
        steps_wall, steps_cpu = time.perf_counter() - began, time.process_time() - cpu
        takeover = take_over(service, clock, shard, shards, barrier.parent) if shards > 1 else None
        return {
            "shard": shard,
            "shards": shards,
            "series": series,
            "warm_samples": warm.samples,
            "warm_seconds": warm_wall,
            "warm_cpu_seconds": warm_cpu,
            "rss_growth_bytes": grown,
            "rss_bytes": rss_bytes(),
            "max_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "steps": steps,
            "step_samples": samples,
            "steps_seconds": steps_wall,
            "steps_cpu_seconds": steps_cpu,
            "warm_parts_seconds": warm_parts,
            "step_seconds_mean": float(np.mean(totals)),
            "step_seconds_median": float(np.median(totals)),
            "step_seconds_p90": float(np.quantile(totals, 0.9)),
            "pull_seconds_mean": float(np.mean(pulls)),
            "process_seconds_mean": float(np.mean(rest)),
            "process_seconds_median": float(np.median(rest)),
            "parts_seconds_median": {what: float(np.median(v)) for what, v in parts.items()},
            "led_at_last_step": engine.leading,
            "takeover": takeover,
        }
    finally:
        service.stop()


def take_over(service: Any, clock: Any, shard: int, shards: int, runs: Path) -> dict[str, Any] | None:
    """The last shard leaves once every shard has done its steps; the others step until they have taken its series
    over (``engine.takeover_after_seconds`` is one step): the step that adopts them and replays their history."""
    engine = service.engine
    (runs / f"steady-{shard}").touch()
    if shard == shards - 1:
        while not all((runs / f"steady-{s}").exists() for s in range(shards)):
            time.sleep(0.01)  # waiting for the others' steps, bounded by the parent's deadline
        return None  # stopping (in the worker's finally) checkpoints it and leaves the fleet
    while not (runs / GONE).exists():
        time.sleep(0.01)  # waiting for the last shard to have left, bounded by the parent's deadline
    before, rows = engine.series, []
    for _ in range(3):  # absent from the first step on; taken over one step later
        clock.advance(STEP)
        now = clock.now()
        t0 = time.perf_counter()
        report = engine.process(engine.collector.pull(now), now)
        rows.append({"seconds": time.perf_counter() - t0, "samples": report.samples, "series": engine.series})
    taking = next((r for r in rows if r["series"] > before), None)
    return {
        "series_before": before,
        "series_after": engine.series,
        "taken": engine.series - before,
        "step_seconds": None if taking is None else taking["seconds"],
        "step_samples": None if taking is None else taking["samples"],
        "steady_step_seconds": rows[-1]["seconds"],
    }


# -- the fleets -------------------------------------------------------------------------------------


def run_fleet(config: Path, shards: int, start: float, steps: int, workdir: Path) -> dict[str, Any]:
    runs = workdir / f"fleet-{shards}"
    shutil.rmtree(runs, ignore_errors=True)
    runs.mkdir(parents=True)
    barrier = runs / GO
    procs = []
    for shard in range(shards):
        out = runs / f"shard-{shard}.json"
        command = [
            sys.executable,
            "-m",
            "tests.bench.bench_shards",
            "--worker",
            f"{shard}/{shards}",
            "--config",
            str(config),
            "--start",
            str(start),
            "--steps",
            str(steps),
            "--barrier",
            str(barrier),
            "--json",
            str(out),
        ]
        log = (runs / f"shard-{shard}.log").open("wb")
        procs.append((subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT), out, log))
    wall = time.perf_counter()
    deadline = time.monotonic() + 1800
    while not all((runs / f"ready-{shards}-{s}").exists() for s in range(shards)):
        for proc, _, _ in procs:
            if proc.poll() is not None:
                raise SystemExit(f"a shard of {shards} exited during warm-up; see {runs}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the fleet of {shards} did not warm up within 30 minutes")
        time.sleep(0.1)  # polling the shard processes, bounded by the deadline
    warm_wall = time.perf_counter() - wall
    barrier.touch()
    if shards > 1:  # the last shard leaves after the steps: the others take its series over
        procs[-1][0].wait(timeout=1800)
        (runs / GONE).touch()
    results = []
    for proc, out, log in procs:
        proc.wait(timeout=1800)
        log.close()
        if proc.returncode != 0:
            raise SystemExit(f"a shard of {shards} failed ({proc.returncode}); see {runs}")
        results.append(json.loads(out.read_text()))
    steps_wall = max(r["steps_seconds"] for r in results)
    return {
        "shards": shards,
        "series": sum(r["series"] for r in results),
        "warm_samples": sum(r["warm_samples"] for r in results),
        "warm_wall_seconds": warm_wall,
        "warm_samples_per_s": sum(r["warm_samples"] for r in results) / warm_wall,
        "step_samples": sum(r["step_samples"] for r in results),
        "steps_wall_seconds": steps_wall,
        "step_samples_per_s": sum(r["step_samples"] for r in results) / steps_wall,
        "step_seconds_mean": float(np.mean([r["step_seconds_mean"] for r in results])),
        "step_seconds_median": float(np.mean([r["step_seconds_median"] for r in results])),
        "step_seconds_max": max(r["step_seconds_median"] for r in results),
        "pull_seconds_mean": float(np.mean([r["pull_seconds_mean"] for r in results])),
        "process_seconds_median": float(np.mean([r["process_seconds_median"] for r in results])),
        "parts_seconds_median": {
            what: float(np.mean([r["parts_seconds_median"][what] for r in results]))
            for what in ("models", "share", "act")
        },
        "takeover": takeover_of(results),
        "per_shard": results,
    }


def takeover_of(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The survivors' takeover of the last shard's series: how many, and the slowest survivor's step doing it."""
    survivors = [r["takeover"] for r in results if r.get("takeover")]
    if not survivors:
        return None
    steps = [t["step_seconds"] for t in survivors if t["step_seconds"] is not None]
    left = next(r["series"] for r in results if not r.get("takeover"))
    return {
        "left_series": left,
        "taken": sum(t["taken"] for t in survivors),
        "complete": sum(t["taken"] for t in survivors) == left and len(steps) == len(survivors),
        "step_seconds_max": max(steps) if steps else None,
        "steady_step_seconds_max": max(t["steady_step_seconds"] for t in survivors),
    }


def memory_slope(fleets: list[dict[str, Any]]) -> float | None:
    """Resident bytes per series owned: the slope over every shard of every fleet (the process's own size cancels)."""
    points = [(r["series"], r["rss_bytes"]) for f in fleets for r in f["per_shard"]]
    if len({n for n, _ in points}) < 2:
        return None
    slope, _ = np.polyfit([n for n, _ in points], [b for _, b in points], 1)
    return float(slope)


def projection(fleets: list[dict[str, Any]], target: int, limit_gib: float) -> dict[str, Any]:
    """Per replica, for ``target`` series, from the costs per series measured: a step's models and decisions on
    one shard, the sharing of a sharded replica, the pull of every series, memory by the slope over the shards."""
    one = next(f for f in fleets if f["shards"] == 1)
    shard = one["per_shard"][0]
    series = shard["series"]
    parts = shard["parts_seconds_median"]
    sharded = [f for f in fleets if f["shards"] > 1]
    share = (
        float(np.mean([r["parts_seconds_median"]["share"] / r["series"] for r in sharded[0]["per_shard"]]))
        if sharded
        else 0.0
    )
    models, act = parts["models"] / series, parts["act"] / series
    pull = shard["pull_seconds_mean"] / series  # every replica pulls every series of every cluster
    slope = memory_slope(fleets)
    memory = slope if slope is not None and slope > 0 else shard["rss_growth_bytes"] / series
    warm_cpu_per_sample = shard["warm_cpu_seconds"] / shard["warm_samples"]
    base = max(shard["rss_bytes"] - memory * series, 0.0)
    budget = limit_gib * 2**30
    # memory: the process, the model state, and a copy of it while a checkpoint is taken
    per_replica_max = int((budget - base) / (2 * memory))
    rows = []
    for replicas in (1, 4, 8, 16, 32, 64):
        owned = target / replicas
        rows.append(
            {
                "replicas": replicas,
                "series_per_replica": owned,
                "memory_gib": (base + 2 * memory * owned) / 2**30,
                "step_own_seconds": (models + act + (share if replicas > 1 else 0.0)) * owned,
                "step_models_seconds": models * owned,
                "step_share_seconds": (share if replicas > 1 else 0.0) * owned,
                "step_pull_seconds": pull * target,
                "warm_up_cpu_seconds_per_day_of_history": warm_cpu_per_sample * owned * 86_400 / STEP,
            }
        )
    return {
        "target_series": target,
        "measured_series_one_shard": series,
        "memory_bytes_per_series": memory,
        "memory_from_slope": slope is not None and slope > 0,
        "models_seconds_per_series_per_step": models,
        "act_seconds_per_series_per_step": act,
        "share_seconds_per_series_per_step": share,
        "pull_seconds_per_series_per_step": pull,
        "warm_cpu_seconds_per_sample": warm_cpu_per_sample,
        "process_base_bytes": base,
        "memory_limit_gib": limit_gib,
        "series_per_replica_within_limit": per_replica_max,
        "replicas_needed_by_memory": math.ceil(target / per_replica_max) if per_replica_max > 0 else None,
        "rows": rows,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", type=int, default=1000, help="workloads per cluster (two series each)")
    ap.add_argument("--hours", type=float, default=6.0, help="history each shard backfills at start")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--shards", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--project", type=int, default=1_000_000, help="series of the projection")
    ap.add_argument("--limit-gib", type=float, default=2.0, help="memory limit of a replica (the manifests': 2 GiB)")
    ap.add_argument("--json", type=Path, default=Path("bench-results/shards.json"))
    ap.add_argument("--workdir", type=Path, default=stack.STACK_DIR / "bench-shards")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # INDEX/COUNT: run one shard
    ap.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--start", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--barrier", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        shard, shards = map(int, args.worker.split("/"))
        result = worker(args.config, shard, shards, args.start, args.steps, args.barrier)
        args.json.write_text(json.dumps(result))
        return 0

    state = stack.read_state()
    if state is None:
        raise SystemExit("the test stack is not running: `make stack-up` (its PostgreSQL holds the fleet's tables)")
    end = math.floor(time.time() / STEP) * STEP - 600
    start = int(end - args.hours * 3600 - args.steps * STEP)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"{len(CLUSTERS)} Prometheus servers, {args.workloads} workloads x 2 signals each...", file=sys.stderr)
    servers, procs = start_servers(args.workloads, start, end, args.workdir)
    fleets = []
    try:
        for shards in args.shards:
            name = f"bench_{uuid.uuid4().hex[:12]}"
            url = stack.create_database(state["postgres"], name)
            try:
                config = args.workdir / f"icos-{shards}.yaml"
                shutil.rmtree(args.workdir / f"checkpoints-{shards}", ignore_errors=True)  # every fleet starts cold
                settings = {
                    "clusters": [
                        # four replicas' backfills at once on two cores: wait for a slow server, never give up
                        {"name": n, "url": u, "capacity_cores": 64, "timeout_seconds": 300}
                        for n, u in servers.items()
                    ],
                    "signals": SIGNALS,
                    "collection": {"step_seconds": STEP, "backfill_hours": args.hours, "reload_config": False},
                    "storage": {"database_url": url, "checkpoint_dir": str(args.workdir / f"checkpoints-{shards}")},
                    "models": {"checkpoint_every_steps": 10_000},  # checkpoints are measured by bench_checkpoint
                    "engine": {"takeover_after_seconds": STEP},
                    "mlflow": {"enabled": False},
                    "policy": {"mode": "recommend"},
                }
                config.write_text(yaml.safe_dump(settings))
                print(f"fleet of {shards}...", file=sys.stderr)
                fleets.append(run_fleet(config, shards, end - args.steps * STEP, args.steps, args.workdir))
            finally:
                stack.drop_database(state["postgres"], name)
    finally:
        for p in procs:
            stack.stop_group(p.pid)
    expected = len(CLUSTERS) * series_per_cluster(args.workloads)
    for f in fleets:
        f["complete"] = f["series"] == expected  # every series modelled by one shard after the warm-up
        if not f["complete"]:
            print(f"WARNING: the fleet of {f['shards']} modelled {f['series']} of {expected} series", file=sys.stderr)
    project = projection(fleets, args.project, args.limit_gib) if any(f["shards"] == 1 for f in fleets) else None
    report(args, fleets, project)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps(
            {
                "cores": os.cpu_count(),
                "args": {k: str(v) for k, v in vars(args).items() if v is not None},
                "fleets": fleets,
                "projection": project,
            },
            indent=2,
        )
    )
    print(f"\nwritten {args.json}", file=sys.stderr)
    return 0


def report(args: argparse.Namespace, fleets: list[dict[str, Any]], project: dict[str, Any] | None) -> None:
    series = fleets[0]["series"] if fleets else 0
    print(
        f"\nsharding benchmark: {series:,} series ({len(CLUSTERS)} clusters), {os.cpu_count()} cores, 60 s step; "
        f"step times are medians over {args.steps} steps, per shard (mean over the shards)"
    )
    head = (
        f"{'shards':>6}  {'series/shard':>12}  {'warm-up samples/s':>17}  {'step samples/s':>14}  {'step s':>7}  "
        f"{'slowest':>7}  {'pull':>6}  {'models':>6}  {'share':>6}  {'act':>6}"
    )
    print(head + "\n" + "-" * len(head))
    for f in fleets:
        parts = f["parts_seconds_median"]
        print(
            f"{f['shards']:>6}  {f['series'] / f['shards']:>12,.0f}  {f['warm_samples_per_s']:>17,.0f}  "
            f"{f['step_samples_per_s']:>14,.0f}  {f['step_seconds_median']:>7.3f}  {f['step_seconds_max']:>7.3f}  "
            f"{f['pull_seconds_mean']:>6.3f}  {parts['models']:>6.3f}  {parts['share']:>6.3f}  {parts['act']:>6.3f}"
        )
    for f in fleets:
        t = f.get("takeover")
        if t is None:
            continue
        step = "n/a" if t["step_seconds_max"] is None else f"{t['step_seconds_max']:.3f} s"
        print(
            f"fleet of {f['shards']}: shard {f['shards'] - 1} leaves; the others take {t['taken']:,} of its "
            f"{t['left_series']:,} series over in a step of {step} (slowest survivor; "
            f"{t['steady_step_seconds_max']:.3f} s the step after){'' if t['complete'] else '  INCOMPLETE'}"
        )
    if project is None:
        return
    print(
        f"\nprojection for {project['target_series']:,} series at a 60 s step, per series: "
        f"{project['memory_bytes_per_series'] / 1024:.1f} KiB resident"
        f"{' (slope over the shards)' if project['memory_from_slope'] else ''}; per step "
        f"{project['models_seconds_per_series_per_step'] * 1e6:.0f} µs models, "
        f"{project['act_seconds_per_series_per_step'] * 1e6:.0f} µs decisions, "
        f"{project['share_seconds_per_series_per_step'] * 1e6:.0f} µs sharing (sharded) per series owned, "
        f"{project['pull_seconds_per_series_per_step'] * 1e6:.0f} µs pull per series of the fleet; "
        f"{project['series_per_replica_within_limit']:,} series fit a {project['memory_limit_gib']:g} GiB replica "
        f"(>= {project['replicas_needed_by_memory']} replicas)"
    )
    head = (
        f"{'replicas':>8}  {'series/replica':>14}  {'memory GiB':>10}  {'step s (own)':>12}  {'models':>7}  "
        f"{'sharing':>7}  {'pull s (all)':>12}  {'warm-up CPU s per day of history':>32}"
    )
    print(head + "\n" + "-" * len(head))
    for r in project["rows"]:
        print(
            f"{r['replicas']:>8}  {r['series_per_replica']:>14,.0f}  {r['memory_gib']:>10.1f}  "
            f"{r['step_own_seconds']:>12.2f}  {r['step_models_seconds']:>7.2f}  {r['step_share_seconds']:>7.2f}  "
            f"{r['step_pull_seconds']:>12.2f}  {r['warm_up_cpu_seconds_per_day_of_history']:>32,.0f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
