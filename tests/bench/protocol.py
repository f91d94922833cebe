"""The honest protocol of the model benchmarks: every tuned value is chosen on one part of a set, reported on the other.

- NAB: the 58 files split into two halves by file, balanced by category (:func:`nab_halves`:
  within each category in name order, files go alternately to A and B, the alternation
  running on across categories, so each category splits within one file and the halves
  hold 29 files each). A detector's candidate configurations are all run on every file;
  the one with the best standard NAB score on one half is reported on the other (and the
  reverse). NAB's own threshold is optimised on the set being scored, as NAB does for any
  corpus; the stricter "threshold carried over" figure applies the threshold chosen on the
  tuning half to the held-out one unchanged.
- Azure VM CPU traces: VMs 1-25 choose (by MASE mean + median), VMs 26-50 report.

:func:`choose` is the one rule both use; nothing here looks at a held-out part before the
choice is made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

AZURE_TUNE, AZURE_HELD_OUT = slice(0, 25), slice(25, 50)


def nab_halves(relpaths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Halves A and B of the corpus, by file, balanced by category (deterministic: names only)."""
    by_category: dict[str, list[str]] = {}
    for relpath in sorted(relpaths):
        by_category.setdefault(relpath.split("/")[0], []).append(relpath)
    halves: tuple[list[str], list[str]] = ([], [])
    turn = 0
    for category in sorted(by_category):
        for relpath in by_category[category]:
            halves[turn % 2].append(relpath)
            turn += 1
    return halves


def choose(scores: Sequence[float]) -> int:
    """The index of the best (highest) score among the candidates'; ties go to the earlier candidate."""
    return max(range(len(scores)), key=lambda i: (scores[i] if math.isfinite(scores[i]) else -math.inf, -i))


def mase_summary(mase: np.ndarray) -> dict[str, float]:
    finite = mase[np.isfinite(mase)]
    return {"mase_mean": float(finite.mean()), "mase_median": float(np.median(finite))}
