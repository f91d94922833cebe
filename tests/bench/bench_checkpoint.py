"""Checkpoint and restore of the model bank with 10,000 and 100,000 series.

    .venv/bin/python -m tests.bench.bench_checkpoint [--series 10000,100000] [--json FILE]

The bank holds the default kinds (fixed-size state per series, so a few learnt steps
give the full size). Measured: the engine's pause (copying the snapshot: the only part
on the engine thread), serialising and writing it atomically (on the writer thread),
the file size, and loading it back into a bank. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from intelligence.vocabulary import SeriesKey
from models import checkpoint
from models.bank import ModelBank
from models.kinds import ModelSpec

STEP = 60.0
SPEC = ModelSpec.of("seasonal_ar", "record_ratio", {"step_seconds": STEP, "horizon": 12}, {})


def _bank(n: int, steps: int) -> ModelBank:
    bank = ModelBank(lambda key: SPEC)
    keys = [SeriesKey.of(f"c{j % 10}", "cpu", {"namespace": "ns", "workload": f"w{j}"}) for j in range(n)]
    rng = np.random.default_rng(0)
    for i in range(steps):
        t = np.array([i * STEP])
        values = 50 + rng.normal(0, 1, n)
        bank.observe_many([(k, t, values[j : j + 1]) for j, k in enumerate(keys)], report_at=0.55)
        print(f"  {n} series: learnt step {i + 1}/{steps}", file=sys.stderr)
    return bank


def bench(n: int, steps: int) -> dict[str, Any]:
    bank = _bank(n, steps)
    signature = {"bench": 1}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bank.pkl"
        started = time.perf_counter()
        snapshot = checkpoint.snapshot_copy(bank.snapshot())
        pause = time.perf_counter() - started
        started = time.perf_counter()
        payload = checkpoint.dump(snapshot, signature)
        dump_s = time.perf_counter() - started
        started = time.perf_counter()
        checkpoint.write_atomically(path, payload)
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        restored = ModelBank(lambda key: SPEC, **checkpoint.load(path, signature))
        load_s = time.perf_counter() - started
    key = SeriesKey.of("c1", "cpu", {"namespace": "ns", "workload": "w1"})
    before, after = bank.forecast(key, 12, STEP), restored.forecast(key, 12, STEP)
    assert before is not None
    assert after is not None
    assert before.point == after.point
    return {
        "series": n,
        "engine_pause_s": pause,
        "serialise_s": dump_s,
        "write_s": write_s,
        "restore_s": load_s,
        "size_mb": len(payload) / 1e6,
        "bytes_per_series": len(payload) / n,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", default="10000,100000")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--json", type=Path, default=Path("bench-results/checkpoint.json"))
    args = ap.parse_args()
    rows = [bench(int(n), args.steps) for n in args.series.split(",")]
    print("\nCheckpoint of the model bank (default kinds; the pause is the only part on the engine thread)")
    print(
        f"{'series':>8} {'pause s':>8} {'serialise s':>12} {'write s':>8} {'restore s':>10} {'MB':>8} {'B/series':>9}"
    )
    for r in rows:
        print(
            f"{r['series']:>8} {r['engine_pause_s']:8.3f} {r['serialise_s']:12.3f} {r['write_s']:8.3f} "
            f"{r['restore_s']:10.3f} {r['size_mb']:8.1f} {r['bytes_per_series']:9.0f}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2))
    print(f"written {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
