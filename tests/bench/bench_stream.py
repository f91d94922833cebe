"""How calm the recommendation stream is on the embedded default: 24 simulated hours, as a new user runs it.

    .venv/bin/python -m tests.bench.bench_stream [--hours 24] [--mode recommend|enact] [--json FILE]

The service runs on its embedded default (the simulated continuum, no cluster), stepped on a
manual clock (no wall-clock waits); in ``enact`` mode against an in-memory meta-kernel. The
stream is then read back from the database (every revision is kept): recommendations opened and
values published per workload per day, and every reversal within the envelope's
``reversal_minutes``. Target (the issue): no reversal; under 20 recommendations per workload
per day.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from intelligence.evaluation.stream import stream_figures
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock

START = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
TARGET_PER_WORKLOAD_DAY = 20


def run(hours: float, mode: str, state: Path, settings_overrides: dict[str, str]) -> dict[str, object]:
    overrides = {**settings_overrides, "storage.state_dir": str(state), "mlflow.enabled": False, "policy.mode": mode}
    settings = load_settings(None, **overrides)
    clock = ManualClock(START.timestamp())
    if mode == "enact":
        import intelligence.runtime.wiring as wiring
        from tests.fakes.kernel import MemoryKernel

        kernel = MemoryKernel()
        wiring._meta_kernel = lambda settings: kernel  # type: ignore[assignment]
    svc = build_service(settings, clock=clock)
    step = settings.simulation.step_seconds
    steps = round(hours * 3600.0 / step)
    started = time.perf_counter()
    try:
        for i in range(steps):
            svc.engine.step(clock.now())
            svc.actuator.enact_due(datetime.fromtimestamp(clock.now(), UTC))
            clock.advance(step)
            if (i + 1) % max(1, steps // 10) == 0:
                print(f"  {100 * (i + 1) / steps:3.0f}% ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
        window = timedelta(minutes=svc.actuator.envelope.reversal_minutes)
        end = datetime.fromtimestamp(clock.now(), UTC)
        figures = stream_figures(svc.actuator.store, window, START, end)
    finally:
        svc.stop()
    return {
        **figures.as_dict(),
        "mode": mode,
        "reversal_minutes": window.total_seconds() / 60,
        "seconds": time.perf_counter() - started,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--mode", choices=["recommend", "enact", "both"], default="both")
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="a setting, e.g. policy.envelope.min_change=2"
    )
    ap.add_argument("--json", type=Path, default=Path("bench-results/stream.json"))
    args = ap.parse_args()
    results = {}
    for mode in ["recommend", "enact"] if args.mode == "both" else [args.mode]:
        print(f"{mode}: {args.hours:g} simulated hours of the embedded default", file=sys.stderr)
        with tempfile.TemporaryDirectory() as state:
            results[mode] = run(args.hours, mode, Path(state), dict(kv.split("=", 1) for kv in args.set))
    print(f"\n{'mode':10} {'workloads':>9} {'opened':>7} {'/wl/day':>8} {'values':>7} {'/wl/day':>8} {'reversals':>9}")
    for mode, r in results.items():
        print(
            f"{mode:10} {r['workloads']:>9} {r['recommendations']:>7} {r['recommendations_per_workload_day']:>8} "
            f"{r['revisions']:>7} {r['revisions_per_workload_day']:>8} {len(r['reversals']):>9}"  # type: ignore[arg-type]
        )
        for reversal in r["reversals"]:  # type: ignore[attr-defined]
            print(f"  reversal: {reversal}")
    met = all(
        not r["reversals"] and float(r["recommendations_per_workload_day"]) < TARGET_PER_WORKLOAD_DAY  # type: ignore[arg-type]
        for r in results.values()
    )
    print(
        f"target (no reversal, < {TARGET_PER_WORKLOAD_DAY} recommendations per workload per day): "
        f"{'met' if met else 'NOT met'}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"results": results, "met": met}, indent=2))
    print(f"written {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
