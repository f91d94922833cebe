"""The container image: built by `make image`, then run once as a pod would run it.

The service starts on its embedded default with a read-only root filesystem, as uid 10001, as PID 1,
its state on a host directory mounted at the state directory; it answers the readiness probe on
loopback; SIGTERM stops it with exit code 0 and a checkpoint saved. No part is skipped: `make test`
installs buildah, podman and mmdebstrap when missing, and the fixture builds the image (cached layers:
a few seconds when nothing changed).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.container import ROOT, Container, image_config, version

pytestmark = pytest.mark.e2e

IMAGE = os.environ.get("ICOS_TEST_IMAGE", f"localhost/icos-intelligence:{version()}")
STATE_IN_IMAGE = "/var/lib/icos-intelligence"
UID = 10001


@pytest.fixture(scope="module")
def image() -> str:
    """The image, (re)built from the working tree: `make image` is a no-op but for a changed layer."""
    started = time.monotonic()
    subprocess.run(["make", "-s", "image", f"IMAGE={IMAGE}"], cwd=ROOT, check=True, capture_output=True)
    print(f"make image: {time.monotonic() - started:.1f} s")
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def ready(base: str) -> bool:
    """The readiness probe's answer, as Kubernetes reads it (any 2xx or 3xx is ready)."""
    status, _ = get(f"{base}/readyz")
    if status == 404:
        # TODO(/readyz): the readiness endpoint is being added to the API on another branch. Until it is merged,
        # /readyz answers 404 here and the test falls back to /healthz; delete this fallback once /readyz exists.
        status, _ = get(f"{base}/healthz")
    return 200 <= status < 400


@pytest.fixture
def service(image: str, tmp_path: Path) -> Iterator[tuple[Container, int]]:
    state = tmp_path / "state"
    state.mkdir()
    os.chown(state, UID, UID)  # a pod gets this from fsGroup
    port = free_port()
    running = Container(image, state, tmp_path / "root", tmp_path / "service.log", ["--port", str(port)])
    yield running, port
    running.remove()


def test_the_image_is_what_kubernetes_expects(image: str) -> None:
    config = image_config(image)
    assert config["User"] == f"{UID}:{UID}"  # numeric: runAsNonRoot can verify it
    assert config["Entrypoint"] == ["icos-intel", "run", "--host", "0.0.0.0"]  # noqa: S104 - what a pod needs
    assert "Healthcheck" not in config  # the probes do that
    assert config["WorkingDir"] == STATE_IN_IMAGE
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["ICOS_STORAGE__STATE_DIR"] == STATE_IN_IMAGE


def test_the_service_runs_read_only_as_a_pod_would_and_stops_on_sigterm(service: tuple[Container, int]) -> None:
    container, port = service
    started = time.monotonic()
    container.start()
    base = f"http://127.0.0.1:{port}"
    deadline = started + 120
    while True:
        assert container.proc is not None
        assert container.proc.poll() is None, f"exited early ({container.proc.returncode}):\n{container.output()}"
        try:
            if ready(base):
                break
        except OSError:
            pass  # not listening yet
        assert time.monotonic() < deadline, f"not ready within 120 s:\n{container.output()}"
        time.sleep(0.1)  # polling a live server, bounded by the deadline
    ready_seconds = time.monotonic() - started
    health = json.loads(get(f"{base}/healthz")[1])
    assert health["embedded"] is True
    assert health["engine"]["series"] == 20
    assert container.status("Uid").split()[0] == str(UID)
    peak_rss = container.status("VmHWM")
    stopping = time.monotonic()
    container.signal(signal.SIGTERM)
    code = container.wait()
    output = container.output()
    stopped_seconds = time.monotonic() - stopping
    print(f"start to ready {ready_seconds:.1f} s, SIGTERM to exit {stopped_seconds:.1f} s, peak RSS {peak_rss}")
    assert code == 0, output
    assert "stopped; state saved" in output
    assert re.search(r"http://0\.0\.0\.0:\d+/healthz", output)  # the entry point listens on every interface
    assert "Read-only file system" not in output  # nothing tried to write outside the volume and /tmp
    assert "Traceback" not in output
    checkpoint = container.state / "checkpoints" / "bank-shard0.pkl"
    assert checkpoint.is_file()
    assert checkpoint.stat().st_uid == UID
    assert (container.state / "decisions.db").is_file()
