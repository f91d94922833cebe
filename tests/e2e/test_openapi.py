"""Schemathesis over the whole OpenAPI schema, authenticated: no 5xx, and no answer that breaks the schema.

Every operation of ``/openapi.json`` gets generated inputs (valid ones and edge cases: huge
ids, odd times, long and strange strings) against the embedded default with data in it;
every answer is checked for a server error, an undocumented status code, a content type,
headers or a body that the schema does not describe.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from api.app import create_app
from intelligence.runtime.wiring import build_service
from intelligence.settings import load_settings
from intelligence.vocabulary import ManualClock
from tests.driving import drive

pytestmark = pytest.mark.e2e

START = datetime(2026, 1, 1, 5, 30, tzinfo=UTC).timestamp()
AUTH = {"Authorization": "Bearer schemathesis-token"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# The document comes from an app that is never started (it needs no service); the operations are called on an
# app serving the fixture's service, with data in it. Tokens are read at each request, from this folder.
TOKENS = Path(tempfile.gettempdir()) / f"icos-schemathesis-{os.getpid()}" / "tokens"
SETTINGS = load_settings(None, **{"mlflow.enabled": False, "api.tokens_dir": str(TOKENS)})
schema = schemathesis.openapi.from_dict(create_app(SETTINGS).openapi())


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    TOKENS.mkdir(parents=True, exist_ok=True)
    (TOKENS / "fuzzer").write_text("schemathesis-token")
    conf = SETTINGS.model_copy(
        update={"storage": SETTINGS.storage.model_copy(update={"state_dir": tmp_path_factory.mktemp("state")})}
    )
    clock = ManualClock(START)
    svc = build_service(conf, clock=clock)
    drive(svc, clock, 30)  # forecasts, anomalies, recommendations, events: every list has data
    with asgi.get_client(create_app(conf, service=svc)) as client:
        yield client
    svc.stop()
    shutil.rmtree(TOKENS.parent, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_operation_answers_as_documented(case, client):
    case.call_and_validate(session=client, base_url="http://testserver", headers=AUTH, checks=CHECKS)
