"""How calm a recommendation stream is: what was published per target and lever, and every reversal.

Read from the recommendation store after a run (every revision is kept), so it measures what
the remediation loop and the people approving actually saw. A *reversal* is a published value
that turns back within the window: a floor published lower than the one before it while that
one's pulse still ran, after a raise (or higher after a lowering), or a move back to the
cluster a workload was moved away from. A pulse that ends and a new one later is not a
reversal: each is a recommendation of its own, from the baseline.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from intelligence.storage.recommendations import RecommendationStore
from intelligence.vocabulary import Lever


@dataclass(frozen=True, slots=True)
class Published:
    at: datetime
    value: int | str
    recommendation_id: int
    until: datetime | None  # the recommendation's last validity (a floor: its pulse's end)


@dataclass(frozen=True, slots=True)
class Reversal:
    target: str
    lever: str
    before: Published
    after: Published

    def __str__(self) -> str:
        minutes = (self.after.at - self.before.at).total_seconds() / 60
        return (
            f"{self.target} {self.lever}: {self.before.value} at {self.before.at:%H:%M} "
            f"-> {self.after.value} at {self.after.at:%H:%M} ({minutes:.0f} min)"
        )


@dataclass(frozen=True, slots=True)
class StreamFigures:
    hours: float  # the span the figures cover
    workloads: int  # targets with at least one recommendation
    recommendations: int  # opened
    revisions: int  # values published, first ones included
    reversals: list[Reversal] = field(default_factory=list)
    per_target: dict[str, int] = field(default_factory=dict)  # "target lever" -> recommendations opened

    def per_workload_day(self, count: int) -> float:
        return count / max(self.workloads, 1) / max(self.hours / 24.0, 1e-9)

    def as_dict(self) -> dict[str, object]:
        return {
            "hours": self.hours,
            "workloads": self.workloads,
            "recommendations": self.recommendations,
            "revisions": self.revisions,
            "recommendations_per_workload_day": round(self.per_workload_day(self.recommendations), 2),
            "revisions_per_workload_day": round(self.per_workload_day(self.revisions), 2),
            "reversals": [str(r) for r in self.reversals],
            "per_target": self.per_target,
        }


def stream_figures(store: RecommendationStore, window: timedelta, since: datetime, until: datetime) -> StreamFigures:
    """The stream published in ``[since, until)``, and the reversals within ``window`` in it."""
    streams: dict[tuple[str, str], list[Published]] = defaultdict(list)
    opened: dict[str, int] = defaultdict(int)
    for stored in store.find(status=None, limit=1_000_000):
        rec = stored.recommendation
        key = (str(rec.target), rec.lever.value)
        for revision in store.history(stored.id):
            if since <= revision.at < until:
                value = revision.params[rec.lever.param]
                streams[key].append(Published(revision.at, value, stored.id, rec.valid_until))
        if since <= rec.created_at < until:
            opened[f"{key[0]} {key[1]}"] += 1
    reversals: list[Reversal] = []
    for (target, lever), values in streams.items():
        values.sort(key=lambda p: (p.at, p.recommendation_id))
        reversals += _reversals(target, Lever(lever), values, window)
    return StreamFigures(
        hours=(until - since).total_seconds() / 3600.0,
        workloads=len({target for target, _ in streams}),
        recommendations=sum(opened.values()),
        revisions=sum(len(v) for v in streams.values()),
        reversals=reversals,
        per_target=dict(sorted(opened.items())),
    )


def _reversals(target: str, lever: Lever, values: list[Published], window: timedelta) -> list[Reversal]:
    found: list[Reversal] = []
    changed_at: datetime | None = None  # the last change: when, which way, and (a move) from where
    direction = 0
    moved_from: int | str | None = None
    before: Published | None = None
    for now in values:
        over = before is not None and before.until is not None and before.until <= now.at
        if over and lever.scales and before is not None and before.recommendation_id != now.recommendation_id:
            before = None  # that pulse was over: a new one starts from the baseline
        if before is None or now.value == before.value:
            before = before or now
            continue
        if lever.scales:
            turn = 1 if int(now.value) > int(before.value) else -1
            reverses = turn == -direction
        else:
            turn, reverses = 0, now.value == moved_from
        if reverses and changed_at is not None and now.at - changed_at < window:
            found.append(Reversal(target, lever.value, before, now))
        changed_at, direction, moved_from = now.at, turn, before.value
        before = now
    return found
