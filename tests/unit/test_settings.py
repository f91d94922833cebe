from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from intelligence.settings import ConfigError, Settings, load_settings
from intelligence.vocabulary import Mode

EXAMPLE = Path(__file__).resolve().parents[2] / "intelligence" / "settings" / "example-config.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_are_the_embedded_continuum():
    s = load_settings()
    assert s.embedded
    assert s.policy.mode is Mode.RECOMMEND
    assert (s.api.host, s.api.port) == ("127.0.0.1", 8080)


def test_the_shipped_example_is_valid_and_its_defaults_are_the_code_defaults():
    s = load_settings(EXAMPLE)
    assert [c.name for c in s.clusters] == ["cloud-1", "edge-1"]
    data = yaml.safe_load(EXAMPLE.read_text())
    data.pop("clusters")
    assert Settings(**data) == Settings(), "example-config.yaml and the code defaults drifted apart"


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    path = write(tmp_path, "api:\n  port: 9001\npolicy:\n  mode: observe\n")
    monkeypatch.setenv("ICOS_API__PORT", "9002")
    s = load_settings(path)
    assert s.api.port == 9002
    assert s.policy.mode is Mode.OBSERVE


def test_command_line_options_override_the_environment(tmp_path, monkeypatch):
    path = write(tmp_path, "api:\n  port: 9001\n  host: 127.0.0.2\n")
    monkeypatch.setenv("ICOS_API__PORT", "9002")
    monkeypatch.setenv("ICOS_STORAGE__STATE_DIR", "/from/env")
    s = load_settings(path, **{"api.port": 9003, "storage.state_dir": None})  # None: the option was not given
    assert (s.api.port, s.api.host, str(s.storage.state_dir)) == (9003, "127.0.0.2", "/from/env")


def test_every_problem_is_reported_with_its_key_and_value(tmp_path):
    path = write(
        tmp_path,
        "api:\n  port: 70000\n  hots: x\n"
        "clusters:\n  - name: Edge_1\n    url: ftp://x\n"
        "models:\n  horizon_steps: 0\n"
        "policy:\n  knative:\n    min_scale: 9\n    max_scale: 3\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    problems = info.value.problems
    assert any(p.startswith("api.port:") and "70000" in p for p in problems)
    assert "api.hots: unknown key" in problems
    assert any(p.startswith("clusters[0].name:") and "'Edge_1'" in p for p in problems)
    assert any(p.startswith("clusters[0].url:") and "ftp://x" in p for p in problems)
    assert any(p.startswith("models.horizon_steps:") for p in problems)
    assert any(p.startswith("policy.knative:") and "min_scale 9 is above max_scale 3" in p for p in problems)
    assert len(problems) == 6


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api: [1, 2\n", "not valid YAML at line"),
        ("- just\n- a list\n", "top level must be a mapping"),
        ("clusters:\n  - {name: a, url: 'http://x'}\n  - {name: a, url: 'http://y'}\n", "duplicate name(s) a"),
        ("engine:\n  shard_index: 2\n  shard_count: 2\n", "shard_index 2 must be below shard_count 2"),
        ("clusters:\n  - url: http://x\n", "clusters[0].name: required key is missing"),
    ],
)
def test_malformed_files_name_the_problem(tmp_path, text, expected):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    assert expected in str(info.value)


def test_missing_file():
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings("/nonexistent/icos.yaml")


def test_config_check_and_example_commands(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["config", "check", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    assert "valid (2 cluster(s)" in ok.output
    bad = runner.invoke(app, ["config", "check", str(write(tmp_path, "api:\n  port: -1\n"))])
    assert bad.exit_code == 2
    assert "api.port" in bad.output
    assert "Traceback" not in bad.output
    example = runner.invoke(app, ["config", "example"])
    assert example.exit_code == 0
    assert example.output == EXAMPLE.read_text()


def test_the_deploy_configuration_is_valid():
    s = load_settings(Path(__file__).resolve().parents[2] / "deploy" / "config" / "thanos-continuum.yaml")
    assert {c.name: c.selector for c in s.clusters} == {
        "cloud-1": {"cluster": "cloud-1"},
        "fog-1": {"cluster": "fog-1"},
        "edge-1": {"cluster": "edge-1"},
    }


@pytest.mark.parametrize(
    "query",
    ["revision_app_request_count", "sum(http_requests_total)", "sum(rate(x_total[5m])) / sum(y_seconds_total)"],
)
def test_a_raw_counter_is_refused(tmp_path, query):
    path = write(tmp_path, f"signals:\n  - name: bad\n    query: '{query}'\n")
    with pytest.raises(ConfigError, match=r"signals\[0\]\.query: .* is a counter used raw: wrap it in rate"):
        load_settings(path)


def test_counters_inside_rate_or_increase_are_fine(tmp_path):
    path = write(tmp_path, "signals:\n  - name: ok\n    query: 'sum(increase(http_requests_total[1h]))'\n")
    assert load_settings(path).signals[0].name == "ok"
    from intelligence.settings import optional_signals

    assert [s.name for s in optional_signals()] == ["latency_p95", "concurrency", "replicas", "node_cpu"]
