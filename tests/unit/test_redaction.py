"""Credentials in cluster URLs never reach the API, health, logs or configuration errors."""

from __future__ import annotations

import logging

import pytest

from api.cli.common import RedactingFilter
from collectors.prometheus.specs import ClusterTarget
from collectors.prometheus.transport import PrometheusTransport
from intelligence.runtime.facade import ServiceFacade
from intelligence.settings import ConfigError, load_settings
from intelligence.vocabulary import Tier, redact_text, redact_url


def test_urls_lose_their_passwords_and_secret_parameters():
    assert redact_url("http://admin:secret@thanos:9090") == "http://admin:***@thanos:9090"
    assert redact_url("https://tok@thanos") == "https://***@thanos"
    assert "abc" not in redact_url("https://thanos/api?access_token=abc&step=60")
    assert redact_url("http://thanos:9090/") == "http://thanos:9090/"
    assert redact_text("x http://a:b@h/p y https://c:d@e") == "x http://a:***@h/p y https://c:***@e"


def test_the_collector_names_the_url_without_its_password():
    t = PrometheusTransport(ClusterTarget("c", Tier.CLOUD, "http://admin:secret@127.0.0.1:1"))
    assert t.shown_url == "http://admin:***@127.0.0.1:1"
    t.close()


def test_a_configuration_error_does_not_repeat_the_password():
    with pytest.raises(ConfigError) as err:
        load_settings(None, **{"clusters": [{"name": "Bad Name", "url": "http://admin:secret@h:9090"}]})
    assert "secret" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_settings(None, **{"clusters": [{"name": "c", "url": "ftp://admin:secret@h"}]})
    assert "secret" not in str(err.value)


def test_log_lines_are_redacted_whoever_writes_them(caplog):
    logger = logging.getLogger("some.library")
    handler = logging.Handler()
    records: list[str] = []
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning("retrying %s", "http://admin:secret@thanos:9090/api/v1/query")
    finally:
        logger.removeHandler(handler)
    assert records == ["retrying http://admin:***@thanos:9090/api/v1/query"]


def test_the_clusters_endpoint_shows_no_password(embedded_settings):
    class Fake:  # just what ServiceFacade.clusters reads
        pass

    settings = load_settings(
        None,
        **{
            "storage.state_dir": str(embedded_settings.storage.state_dir),
            "clusters": [{"name": "edge-1", "url": "http://admin:secret@127.0.0.1:1"}],
        },
    )
    svc = Fake()
    svc.settings = settings  # type: ignore[attr-defined]
    engine = Fake()
    status = Fake()
    from intelligence.vocabulary import ClusterHealth, HealthState

    status.health = [ClusterHealth("edge-1", Tier.CLOUD, HealthState.DOWN, last_error="x")]  # type: ignore[attr-defined]
    engine.status = status  # type: ignore[attr-defined]
    svc.engine = engine  # type: ignore[attr-defined]
    [info] = ServiceFacade(svc).clusters()  # type: ignore[arg-type]
    assert info.url == "http://admin:***@127.0.0.1:1"
