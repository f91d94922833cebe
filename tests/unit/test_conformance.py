"""Every registered model kind through every conformance check that applies to it: a new kind needs no new test code.

Each kind runs in every configuration it declares for the checks (``_unit_test_params``,
see :func:`models.checks.unit_test_params`); kinds that hold many series in slots also
run the vectorised checks.
"""

import pytest

from models import checks
from models.kinds import (
    DETECTORS,
    FORECASTERS,
    detector_kinds,
    forecaster_kinds,
    is_vectorised,
    kind_class,
    make_detector,
    make_forecaster,
)
from models.slots import Slotted


def configurations(table: dict[str, str], what: str, kinds: list[str]) -> list:
    """(kind, params) for every configuration of every kind; the id is the kind, then the configuration's number."""
    return [
        pytest.param(kind, params, id=kind if i == 0 else f"{kind}-{i}")
        for kind in kinds
        for i, params in enumerate(checks.unit_test_params(kind_class(table, what, kind)))
    ]


FORECASTER_CONFIGS = configurations(FORECASTERS, "forecaster", forecaster_kinds())
DETECTOR_CONFIGS = configurations(DETECTORS, "detector", detector_kinds())
VECTORISED_FORECASTER_CONFIGS = [c for c in FORECASTER_CONFIGS if is_vectorised(FORECASTERS, "forecaster", c.values[0])]
VECTORISED_DETECTOR_CONFIGS = [c for c in DETECTOR_CONFIGS if is_vectorised(DETECTORS, "detector", c.values[0])]


def forecaster(kind: str, params: dict):
    return make_forecaster(kind, **{"step_seconds": checks.STEP, "horizon": checks.HORIZON, **params})


@pytest.mark.parametrize("check", checks.forecaster_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize(("kind", "params"), FORECASTER_CONFIGS)
def test_forecaster(kind, params, check):
    check(forecaster(kind, params))


@pytest.mark.parametrize("check", checks.detector_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize(("kind", "params"), DETECTOR_CONFIGS)
def test_detector(kind, params, check):
    check(make_detector(kind, **params))


@pytest.mark.parametrize("check", checks.vectorised_forecaster_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize(("kind", "params"), VECTORISED_FORECASTER_CONFIGS)
def test_vectorised_forecaster(kind, params, check):
    check(forecaster(kind, params))


@pytest.mark.parametrize("check", checks.vectorised_detector_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize(("kind", "params"), VECTORISED_DETECTOR_CONFIGS)
def test_vectorised_detector(kind, params, check):
    check(make_detector(kind, **params))


def test_every_slotted_kind_runs_the_vectorised_checks():
    """The vectorised suites are not parametrised over an empty list, nor miss a kind that keeps series in slots."""
    for table, what, kinds, configs in (
        (FORECASTERS, "forecaster", forecaster_kinds(), VECTORISED_FORECASTER_CONFIGS),
        (DETECTORS, "detector", detector_kinds(), VECTORISED_DETECTOR_CONFIGS),
    ):
        slotted = {kind for kind in kinds if issubclass(kind_class(table, what, kind), Slotted)}
        assert slotted
        assert {c.values[0] for c in configs} == slotted
