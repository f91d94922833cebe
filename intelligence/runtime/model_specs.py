"""Which models each signal runs: the configured kinds and params, or the signal's registered champion."""

from __future__ import annotations

from typing import Any

from intelligence.settings import Settings
from intelligence.vocabulary import SeriesKey
from models.bank import ModelFactory
from models.kinds import BadModelParams, ModelSpec, UnknownModelKind, make_detector, make_forecaster

Champions = dict[str, dict[str, Any]]  # {signal: {"version": n, "spec": {...}}}


class StartupError(Exception):
    """The service cannot start with this configuration or state; the message says why."""


def model_spec(settings: Settings, signal: str, step_seconds: float) -> dict[str, Any]:
    """Kinds and params of the models of one signal (per-signal overrides applied)."""
    m = settings.models
    over = m.per_signal.get(signal, {})
    signal_settings = next((s for s in settings.signals if s.name == signal), None)
    fparams = {
        "step_seconds": float(step_seconds),
        "horizon": m.horizon_steps,
        "interval": m.interval,
        "non_negative": signal_settings.non_negative if signal_settings is not None else True,
        **m.forecaster_params,
        **over.get("forecaster_params", {}),
    }
    dparams = {**m.detector_params, **over.get("detector_params", {})}
    return {
        "forecaster": over.get("forecaster", m.forecaster),
        "forecaster_params": fparams,
        "detector": over.get("detector", m.detector),
        "detector_params": dparams,
    }


def model_factory(settings: Settings, step_seconds: float, active: Champions | None = None) -> ModelFactory:
    """Models per series: the signal's champion in ``active`` (read at every build), else the settings'."""

    def build(key: SeriesKey) -> ModelSpec:
        champion = (active or {}).get(key.signal)
        return ModelSpec.from_dict(champion["spec"] if champion else model_spec(settings, key.signal, step_seconds))

    return build


def model_signals(settings: Settings) -> list[str]:
    return sorted({s.name for s in settings.signals} | {"requests", "cpu", "memory"} | set(settings.models.per_signal))


def model_signature(settings: Settings, step_seconds: float, active: Champions | None = None) -> dict[str, Any]:
    """What a checkpoint must match to be loaded: the spec every signal runs."""
    active = active or {}
    return {
        s: active[s]["spec"] if s in active else model_spec(settings, s, step_seconds) for s in model_signals(settings)
    }


def check_models(settings: Settings, step_seconds: float) -> None:
    """Every configured kind exists and accepts its params; raises :class:`StartupError` naming the signal."""
    for signal, spec in model_signature(settings, step_seconds).items():
        try:
            make_forecaster(spec["forecaster"], **spec["forecaster_params"])
            make_detector(spec["detector"], **spec["detector_params"])
        except (UnknownModelKind, BadModelParams) as exc:
            raise StartupError(f"models (signal {signal!r}): {exc}") from exc
