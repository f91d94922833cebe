"""Model kinds by name, chosen in settings; never swapped by editing imports."""

from __future__ import annotations

from typing import Any

from models.base import Detector, Forecaster
from models.detectors import DETECTORS
from models.forecasters import FORECASTERS


class UnknownModelKind(ValueError):
    pass


class BadModelParams(ValueError):
    pass


def _build(table: dict[str, type], what: str, kind: str, params: dict[str, Any]) -> Any:
    try:
        cls = table[kind]
    except KeyError:
        raise UnknownModelKind(f"unknown {what} kind {kind!r}; known: {', '.join(sorted(table))}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise BadModelParams(f"{what} {kind!r}: {exc}") from exc


def make_forecaster(kind: str, **params: Any) -> Forecaster:
    model: Forecaster = _build(FORECASTERS, "forecaster", kind, params)
    return model


def make_detector(kind: str, **params: Any) -> Detector:
    model: Detector = _build(DETECTORS, "detector", kind, params)
    return model


def forecaster_kinds() -> list[str]:
    return sorted(FORECASTERS)


def detector_kinds() -> list[str]:
    return sorted(DETECTORS)
