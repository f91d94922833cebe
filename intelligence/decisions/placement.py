"""Placement scores: forecast headroom per cluster, as OCM AddOnPlacementScore values. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from intelligence.decisions.rescheduling import ClusterLoad
from intelligence.decisions.specs import PlacementScoreSpec


def placement_scores(loads: Mapping[str, ClusterLoad]) -> dict[str, int]:
    """OCM AddOnPlacementScore values (-100..100): forecast headroom in percent; down or anomalous: -100.

    A cluster of unknown capacity scores 0 (neutral) rather than a made-up figure.
    """
    scores = {}
    for name, load in sorted(loads.items()):
        if not load.cluster.up or load.cluster.anomalous:
            scores[name] = -100
        elif load.cluster.capacity <= 0:
            scores[name] = 0
        else:
            scores[name] = max(-100, min(100, round(100.0 * load.headroom)))
    return scores


def placement_scores_due(last: datetime | None, now: datetime, policy: PlacementScoreSpec) -> bool:
    return policy.enabled and (last is None or now - last >= timedelta(minutes=policy.publish_every_minutes))
