"""Model kinds and their hyper-parameters; model tracking and the registry in MLflow."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from intelligence.settings.base import _Group
from models.kinds import DEFAULT_DETECTOR, DEFAULT_FORECASTER


class ModelSettings(_Group):
    """Model kinds and their hyper-parameters, per signal if needed."""

    forecaster: str = DEFAULT_FORECASTER
    forecaster_params: dict[str, Any] = Field(default_factory=dict)
    detector: str = DEFAULT_DETECTOR
    detector_params: dict[str, Any] = Field(default_factory=dict)
    per_signal: dict[str, dict[str, Any]] = Field(default_factory=dict)  # {"cpu": {"forecaster": ..., ...}}
    horizon_steps: int = Field(default=12, ge=1, le=2016)
    interval: float = Field(default=0.9, gt=0.0, lt=1.0)  # coverage of the prediction band
    anomaly_threshold: float = Field(
        default=0.55, ge=0.0, le=1.0
    )  # score at or above it is an anomaly event (record_ratio: its alarm level)
    checkpoint_every_steps: int = Field(default=60, ge=1)


class MlflowSettings(_Group):
    """Model tracking. No URI: a local SQLite store in the state directory."""

    enabled: bool = True
    tracking_uri: str | None = None
    experiment: str = "icos-intelligence"
    log_every_steps: int = Field(default=30, ge=1)
    timeout_seconds: float = Field(default=10.0, gt=0.0)
    follow_champions: bool = True  # run each signal's registered champion (registered on a first start)
    registry_poll_seconds: float = Field(default=60.0, gt=0.0)  # how soon a newly promoted champion is picked up
    challenger_window_samples: int = Field(default=2000, ge=10)  # live samples a challenger is judged on, per signal
    promotion_margin: float = Field(default=0.02, ge=0.0, lt=1.0)  # it must beat the champion's error by this share
    checkpoint_artifact_every: int = Field(default=10, ge=0)  # every n-th checkpoint also goes to the run (0: never)
