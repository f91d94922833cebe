"""Every registered model kind through every conformance check: a new kind needs no new test code."""

import pytest

from models import checks
from models.kinds import detector_kinds, forecaster_kinds, make_detector, make_forecaster


@pytest.mark.parametrize("check", checks.forecaster_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", forecaster_kinds())
def test_forecaster(kind, check):
    check(make_forecaster(kind, step_seconds=checks.STEP, horizon=checks.HORIZON))


@pytest.mark.parametrize("check", checks.detector_checks(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind", detector_kinds())
def test_detector(kind, check):
    check(make_detector(kind))
