"""Service settings: one typed object, grouped, loaded from YAML with environment overrides.

Precedence (highest first): command-line options, environment variables
``ICOS_<GROUP>__<KEY>``, the YAML file given with ``--config``, then the defaults. Every default explains
itself; an empty ``clusters`` list selects the embedded simulated continuum.
"""

from __future__ import annotations

from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from intelligence.settings.errors import ConfigError, describe
from intelligence.settings.events import EventSettings
from intelligence.settings.models import MlflowSettings, ModelSettings
from intelligence.settings.policy import PolicySettings
from intelligence.settings.service import (
    ApiSettings,
    EngineSettings,
    HistorySettings,
    KubernetesSettings,
    MetricsSettings,
    StorageSettings,
)
from intelligence.settings.sources import (
    ClusterSettings,
    CollectionSettings,
    ReplaySettings,
    SignalSettings,
    SimulationSettings,
    default_signals,
)


class Settings(BaseSettings):
    """Everything the service needs, validated once at start."""

    model_config = SettingsConfigDict(
        env_prefix="ICOS_", env_nested_delimiter="__", extra="forbid", frozen=True, validate_default=True
    )

    clusters: list[ClusterSettings] = Field(default_factory=list)
    signals: list[SignalSettings] = Field(default_factory=default_signals)
    collection: CollectionSettings = Field(default_factory=CollectionSettings)
    simulation: SimulationSettings = Field(default_factory=SimulationSettings)
    replay: ReplaySettings = Field(default_factory=ReplaySettings)
    models: ModelSettings = Field(default_factory=ModelSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    mlflow: MlflowSettings = Field(default_factory=MlflowSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    events: EventSettings = Field(default_factory=EventSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Command-line options over the environment over the YAML file (passed as init values).
        return _CommandLine(settings_cls), env_settings, init_settings

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        for what, names in (("clusters", [c.name for c in self.clusters]), ("signals", [s.name for s in self.signals])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{what}: duplicate name(s) {', '.join(dupes)}")
        return self

    @property
    def embedded(self) -> bool:
        """No cluster configured: run the built-in simulated continuum (or replay a file)."""
        return not self.clusters

    @property
    def time_basis(self) -> str:
        """What the service's timestamps are: ``simulated`` (the embedded continuum), ``replayed`` or ``real``."""
        if self.replaying:
            return "replayed"
        return "simulated" if self.embedded else "real"

    @property
    def replaying(self) -> bool:
        return self.embedded and self.replay.path is not None

    @property
    def mlflow_uri(self) -> str:
        """The tracking server, or the embedded SQLite store in the state directory."""
        return self.mlflow.tracking_uri or f"sqlite:///{(self.storage.state_dir / 'mlflow.db').resolve()}"


_COMMAND_LINE: ContextVar[dict[str, Any] | None] = ContextVar("icos_command_line_settings", default=None)


class _CommandLine(PydanticBaseSettingsSource):
    """The options given on the command line (``load_settings(**overrides)``): the highest priority."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ hands over the whole tree

    def __call__(self) -> dict[str, Any]:
        return _COMMAND_LINE.get() or {}


def _nested(dotted: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        if value is None:
            continue
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def load_settings(path: Path | str | None = None, **overrides: Any) -> Settings:
    """Load settings: ``overrides`` (dotted keys, e.g. ``api.port``: the command line) over the environment
    (``ICOS_<GROUP>__<KEY>``) over the optional YAML file over the defaults.

    Raises :class:`ConfigError` with one message per problem.
    """
    source = str(path) if path else "defaults and environment"
    data: dict[str, Any] = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(source, [f"cannot read the file: {exc.strerror or exc}"]) from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise ConfigError(source, [f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"]) from exc
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(source, [f"the top level must be a mapping of groups, got {type(loaded).__name__}"])
        data = loaded
    token = _COMMAND_LINE.set(_nested(overrides))
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(source, [describe(e) for e in exc.errors()]) from exc
    finally:
        _COMMAND_LINE.reset(token)
