"""Events the engine's state gives rise to: anomalies above a threshold and changes of a cluster's health.

Recommendations and actions write their events in their own transactions (the stores call
:mod:`intelligence.storage.outbox`). Anomalies and cluster health are not in the decision
database, so after each engine step :class:`EventPump` compares what the step produced
with what it saw before and writes the difference to the outbox in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from intelligence.storage.outbox import ANOMALY_DETECTED, CLUSTER_HEALTH_CHANGED, Outbox
from intelligence.vocabulary import AnomalyScore, ClusterHealth, redact_text

log = logging.getLogger(__name__)

Item = tuple[str, str, Mapping[str, Any], datetime, str | None, str | None]


def _at(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class EventPump:
    """After each step: anomaly events (score >= ``min_score``, sample at most ``max_age_seconds`` old: a
    backfill's history is no news) and every cluster whose health state changed."""

    def __init__(
        self,
        outbox: Outbox,
        min_score: float,
        max_age_seconds: float,
        units: Mapping[str, str],
        on_written: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.min_score = min_score
        self.max_age_seconds = max_age_seconds
        self.units = units
        self.on_written = on_written
        self._states: dict[str, str] | None = None  # cluster -> the state last reported

    def _known_states(self) -> dict[str, str]:
        """What was last reported per cluster, from the outbox (so a restart reports only real changes)."""
        states: dict[str, str] = {}
        for e in self.outbox.last_of_type(CLUSTER_HEALTH_CHANGED):
            if e.cluster is not None and e.cluster not in states:
                states[e.cluster] = str(e.data.get("state"))
        return states

    def anomaly_items(self, scores: Sequence[AnomalyScore], now: float) -> list[Item]:
        at = datetime.fromtimestamp(now, UTC)
        items: list[Item] = []
        for s in scores:
            if s.score < self.min_score or s.timestamp < now - self.max_age_seconds:
                continue
            r = s.reason
            data = {
                "series": str(s.key),
                "cluster": s.key.cluster,
                "signal": s.key.signal,
                "labels": s.key.label_dict,
                "unit": self.units.get(s.key.signal, ""),
                "timestamp": _at(s.timestamp),
                "score": s.score,
                "model": r.model,
                "observed": r.observed,
                "expected": r.expected,
                "lower": r.lower,
                "upper": r.upper,
                "detail": r.detail,
            }
            items.append((ANOMALY_DETECTED, str(s.key), data, at, s.key.cluster, s.key.label("namespace") or None))
        return items

    def health_items(self, health: Sequence[ClusterHealth], now: float) -> list[Item]:
        if self._states is None:
            self._states = self._known_states()
        at = datetime.fromtimestamp(now, UTC)
        items: list[Item] = []
        for h in health:
            before = self._states.get(h.cluster)
            if before == h.state.value:
                continue
            self._states[h.cluster] = h.state.value
            data = {
                "cluster": h.cluster,
                "tier": h.tier.value,
                "state": h.state.value,
                "previous": before,
                "last_success": _at(h.last_success),
                "last_error": redact_text(h.last_error) if h.last_error else None,
            }
            items.append((CLUSTER_HEALTH_CHANGED, f"clusters/{h.cluster}", data, at, h.cluster, None))
        return items

    def after_step(self, new_anomalies: Sequence[AnomalyScore], health: Sequence[ClusterHealth], now: float) -> int:
        """Write this step's events; returns how many."""
        before = dict(self._states) if self._states is not None else None
        items = self.anomaly_items(new_anomalies, now) + self.health_items(health, now)
        if not items:
            return 0
        try:
            written = self.outbox.write(items)
        except Exception:
            self._states = before  # not written: reported again after the next step
            raise
        if self.on_written is not None:
            self.on_written()
        return written
