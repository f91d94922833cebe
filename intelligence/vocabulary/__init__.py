"""The vocabulary every layer shares: the bottom of the project, importing nothing of it.

``series`` (what is measured), ``forecasts`` (what the models say), ``decisions`` (what
the service decides) and ``clock`` (time as an argument). Frozen and typed; no I/O.
"""

from intelligence.vocabulary.clock import Clock, ManualClock, ScaledClock, SystemClock, utc_now
from intelligence.vocabulary.decisions import (
    ActionKind,
    Explanation,
    Lever,
    Mode,
    Recommendation,
    RecommendationStatus,
    WorkloadKind,
    recommendation_key,
)
from intelligence.vocabulary.forecasts import AnomalyReason, AnomalyScore, Forecast
from intelligence.vocabulary.redaction import redact_text, redact_url
from intelligence.vocabulary.series import (
    ClusterHealth,
    HealthState,
    SeriesBatch,
    SeriesKey,
    Tier,
    WorkloadRef,
)

__all__ = [
    "ActionKind",
    "AnomalyReason",
    "AnomalyScore",
    "Clock",
    "ClusterHealth",
    "Explanation",
    "Forecast",
    "HealthState",
    "Lever",
    "ManualClock",
    "Mode",
    "Recommendation",
    "RecommendationStatus",
    "ScaledClock",
    "SeriesBatch",
    "SeriesKey",
    "SystemClock",
    "Tier",
    "WorkloadKind",
    "WorkloadRef",
    "recommendation_key",
    "redact_text",
    "redact_url",
    "utc_now",
]
