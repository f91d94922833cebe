"""Service settings: one typed object, grouped, loaded from YAML with environment overrides.

Only the composition root (``intelligence.runtime``) and ``api`` read settings: every
component receives a plain, frozen spec built from them (``intelligence.runtime.specs``).
"""

from intelligence.settings.errors import ConfigError
from intelligence.settings.events import EventSettings, WebhookSettings
from intelligence.settings.models import MlflowSettings, ModelSettings
from intelligence.settings.policy import (
    KnativeScalingPolicy,
    PlacementScorePolicy,
    PolicyOverride,
    PolicySettings,
    ReschedulePolicy,
    SafetyEnvelope,
)
from intelligence.settings.root import Settings, load_settings
from intelligence.settings.service import (
    ApiSettings,
    EngineSettings,
    HistorySettings,
    KnativeScalePath,
    KubernetesSettings,
    MetricsSettings,
    StorageSettings,
)
from intelligence.settings.sources import (
    AuthSettings,
    ClusterSettings,
    CollectionSettings,
    ReplaySettings,
    SignalSettings,
    SimulationSettings,
    optional_signals,
    raw_counter,
)

__all__ = [
    "ApiSettings",
    "AuthSettings",
    "ClusterSettings",
    "CollectionSettings",
    "ConfigError",
    "EngineSettings",
    "EventSettings",
    "HistorySettings",
    "KnativeScalePath",
    "KnativeScalingPolicy",
    "KubernetesSettings",
    "MetricsSettings",
    "MlflowSettings",
    "ModelSettings",
    "PlacementScorePolicy",
    "PolicyOverride",
    "PolicySettings",
    "ReplaySettings",
    "ReschedulePolicy",
    "SafetyEnvelope",
    "Settings",
    "SignalSettings",
    "SimulationSettings",
    "StorageSettings",
    "WebhookSettings",
    "load_settings",
    "optional_signals",
    "raw_counter",
]
