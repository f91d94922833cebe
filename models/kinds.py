"""Model kinds by name, chosen in settings; never swapped by editing imports.

Kinds are found by dotted path and imported on first use, so naming river's models
here costs nothing until one is built.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from models.base import Detector, Forecaster

DEFAULT_FORECASTER = "seasonal_ar"  # the service's defaults (the settings and the offline tools take them from here)
DEFAULT_DETECTOR = "record_ratio"

FORECASTERS: dict[str, str] = {
    "seasonal_holt": "models.forecasters:SeasonalHolt",
    "ar_rls": "models.forecasters:AutoRegressiveRLS",
    "seasonal_ar": "models.seasonal_ar:SeasonalAR",
    "gbm_lags": "models.gbm:GradientBoostedLags",
    "snarimax": "models.river_kinds:RiverSnarimax",
    "holt_winters": "models.river_kinds:RiverHoltWinters",
}
DETECTORS: dict[str, str] = {
    "residual_robust": "models.detectors:ResidualRobust",
    "residual_likelihood": "models.detectors:ResidualLikelihood",
    "record_ratio": "models.record_ratio:RecordRatio",
    "combined": "models.record_ratio:RecordOrResidual",
    "half_space_trees": "models.river_kinds:HalfSpaceTreesDetector",
}


class UnknownModelKind(ValueError):
    pass


class BadModelParams(ValueError):
    pass


def kind_class(table: dict[str, str], what: str, kind: str) -> type:
    try:
        path = table[kind]
    except KeyError:
        raise UnknownModelKind(f"unknown {what} kind {kind!r}; known: {', '.join(sorted(table))}") from None
    module, name = path.split(":")
    cls: type = getattr(importlib.import_module(module), name)
    return cls


def is_vectorised(table: dict[str, str], what: str, kind: str) -> bool:
    """The kind holds many series in numpy arrays, one slot each (:mod:`models.slots`): banks run it as a fleet."""
    return bool(getattr(kind_class(table, what, kind), "vectorised", False))


def _build(table: dict[str, str], what: str, kind: str, params: dict[str, Any]) -> Any:
    cls = kind_class(table, what, kind)
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


@dataclass(frozen=True)
class ModelSpec:
    """The forecaster and detector (kinds and params) a series gets; hashable, so banks group by it."""

    forecaster: str
    detector: str
    forecaster_params: str = "{}"  # canonical JSON
    detector_params: str = "{}"

    @classmethod
    def of(
        cls, forecaster: str, detector: str, forecaster_params: dict[str, Any], detector_params: dict[str, Any]
    ) -> ModelSpec:
        dump = lambda p: json.dumps(p, sort_keys=True, default=str)  # noqa: E731
        return cls(forecaster, detector, dump(forecaster_params), dump(detector_params))

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> ModelSpec:
        """From the settings' or the registry's form: ``{"forecaster", "forecaster_params", "detector", ...}``."""
        return cls.of(spec["forecaster"], spec["detector"], spec["forecaster_params"], spec["detector_params"])

    def __deepcopy__(self, memo: dict[int, object]) -> ModelSpec:
        return self  # immutable

    def build(self) -> tuple[Forecaster, Detector]:
        return (
            make_forecaster(self.forecaster, **json.loads(self.forecaster_params)),
            make_detector(self.detector, **json.loads(self.detector_params)),
        )

    @cached_property
    def vectorised(self) -> bool:
        """Both kinds hold many series in arrays: the bank runs them as one fleet."""
        return is_vectorised(FORECASTERS, "forecaster", self.forecaster) and is_vectorised(
            DETECTORS, "detector", self.detector
        )
