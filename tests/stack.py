"""The test stack: three real Prometheus servers with backfilled TSDBs and a real MLflow server.

    python -m tests.stack up      # start (idempotent), write tests/.stack/stack.json
    python -m tests.stack down    # stop what `up` started
    python -m tests.stack status

Every Prometheus holds a few days of one cluster of the simulated continuum at a
60 s step (cAdvisor CPU counters, memory gauges, Knative request counters,
labelled by namespace and workload), written as OpenMetrics and loaded with
``promtool tsdb create-blocks-from openmetrics``. Tests recompute the expected
values from the same seed. Readiness is polled, never slept for.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from collectors.simulated import SimulatedContinuum

ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = Path(os.environ.get("ICOS_TEST_STACK_DIR", ROOT / "tests" / ".stack"))
STATE_FILE = STACK_DIR / "stack.json"
CLUSTERS = ("cloud-1", "fog-1", "edge-1")
SEED = 11
STEP = 60
DAYS = 3.0


def find_binary(name: str) -> str:
    """On PATH, or unpacked from the Debian package by `make prometheus` into .cache/prometheus."""
    for candidate in (ROOT / ".cache" / "prometheus" / "usr" / "bin" / name, shutil.which(name)):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise SystemExit(f"{name} not found: run `make prometheus` (unpacks Debian's prometheus package) or install it")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(
    url: str,
    what: str,
    proc: subprocess.Popen[bytes],
    deadline_s: float,
    log: Path,
    context: ssl.SSLContext | None = None,
) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"{what} exited with {proc.returncode} before it was ready; see {log}:\n"
                + log.read_text(errors="replace")[-2000:]
            )
        try:
            with urllib.request.urlopen(url, timeout=1, context=context) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)  # polling interval of a readiness probe
    raise SystemExit(f"{what} not ready at {url} after {deadline_s:.0f}s; see {log}")


def data_window(now: float) -> tuple[float, float]:
    end = math.floor(now / STEP) * STEP - 2 * STEP
    return end - DAYS * 86_400.0, end


def openmetrics(cluster: str, start: float, end: float) -> str:
    """One cluster's series as OpenMetrics text, timestamps in seconds, ending with # EOF."""
    sim = SimulatedContinuum(SEED, origin=end, step_seconds=STEP)
    ts = np.arange(start, end + STEP / 2, STEP)
    values = sim.values(ts)
    lines = ["# TYPE container_cpu_usage_seconds counter"]
    memory, requests = [], []
    for w in sim.workloads:
        if w.cluster != cluster:
            continue
        labels = f'namespace="{w.namespace}",workload="{w.name}",pod="{w.name}-0",container="app"'
        cpu = np.cumsum(values[sim.key(w, "cpu")] * STEP)
        lines += [
            f"container_cpu_usage_seconds_total{{{labels}}} {v:.6f} {int(t)}" for t, v in zip(ts, cpu, strict=True)
        ]
        memory += [
            f"container_memory_working_set_bytes{{{labels}}} {v:.1f} {int(t)}"
            for t, v in zip(ts, values[sim.key(w, "memory")], strict=True)
        ]
        if w.knative:
            rl = f'namespace="{w.namespace}",workload="{w.name}",revision_name="{w.name}-00001"'
            count = np.cumsum(values[sim.key(w, "requests")] * STEP)
            requests += [f"revision_app_request_count{{{rl}}} {v:.3f} {int(t)}" for t, v in zip(ts, count, strict=True)]
    lines += ["# TYPE container_memory_working_set_bytes gauge", *memory]
    # Knative's queue-proxy exports this counter without the _total suffix: an untyped family in OpenMetrics
    lines += ["# TYPE revision_app_request_count unknown", *requests, "# EOF", ""]
    return "\n".join(lines)


def _start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})}
        )


def load_openmetrics(base: Path, text: str) -> None:
    """A fresh TSDB in ``base/data`` holding ``text`` (OpenMetrics ending with # EOF), loaded by promtool."""
    shutil.rmtree(base, ignore_errors=True)
    (base / "data").mkdir(parents=True)
    om = base / "data.om"
    om.write_text(text)
    subprocess.run(
        [find_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(om), str(base / "data")],
        check=True,
        capture_output=True,
    )
    om.unlink()
    (base / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")


def backfill(cluster: str, start: float, end: float, base: Path) -> None:
    """A fresh TSDB in ``base/data`` with one simulated cluster."""
    load_openmetrics(base, openmetrics(cluster, start, end))


def serve_prometheus(
    base: Path, port: int, what: str, web_config: Path | None = None, context: ssl.SSLContext | None = None
) -> subprocess.Popen[bytes]:
    """Start Prometheus on an existing TSDB (again, after a stop) and wait until it is ready.

    ``web_config``: Prometheus' web configuration (TLS, client certificates); ``context``
    is then what the readiness probe connects with.
    """
    log = base / "prometheus.log"
    extra = [f"--web.config.file={web_config}"] if web_config else []
    proc = _start(
        [
            find_binary("prometheus"),
            f"--config.file={base / 'prometheus.yml'}",
            f"--storage.tsdb.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=3650d",
            *extra,
        ],
        log,
    )
    scheme = "https" if web_config else "http"
    wait_ready(f"{scheme}://127.0.0.1:{port}/-/ready", what, proc, 30, log, context)
    return proc


def start_prometheus(cluster: str, start: float, end: float, name: str | None = None) -> dict[str, Any]:
    base = STACK_DIR / f"prometheus-{name or cluster}"
    backfill(cluster, start, end, base)
    port = free_port()
    proc = serve_prometheus(base, port, f"Prometheus of {cluster}")
    return {"url": f"http://127.0.0.1:{port}", "pid": proc.pid, "dir": str(base), "port": port}


def start_mlflow(base: Path | None = None, port: int | None = None, fresh: bool = True) -> dict[str, Any]:
    """An MLflow tracking server (the stack's by default; a test may start its own in ``base``)."""
    base = base or STACK_DIR / "mlflow"
    if fresh:
        shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = base / "mlflow.log"
    mlflow = Path(sys.executable).with_name("mlflow")
    proc = _start(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            f"sqlite:///{base / 'mlflow.db'}",
            "--default-artifact-root",
            str(base / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        log,
        env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/health", "MLflow server", proc, 120, log)
    return {"url": url, "pid": proc.pid, "dir": str(base)}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def read_state() -> dict[str, Any] | None:
    """The running stack, if every process of it is alive."""
    try:
        state: dict[str, Any] = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None
    pids = [p["pid"] for p in state["prometheus"].values()] + [state["mlflow"]["pid"]]
    return state if all(_alive(p) for p in pids) else None


def up() -> dict[str, Any]:
    state = read_state()
    if state is not None:
        return state
    down()
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    start, end = data_window(time.time())
    state = {"data": {"seed": SEED, "step": STEP, "start": start, "end": end}, "prometheus": {}, "mlflow": {}}
    try:
        for cluster in CLUSTERS:
            state["prometheus"][cluster] = start_prometheus(cluster, start, end)
            print(f"stack: Prometheus of {cluster} at {state['prometheus'][cluster]['url']}", file=sys.stderr)
        state["mlflow"] = start_mlflow()
        print(f"stack: MLflow at {state['mlflow']['url']}", file=sys.stderr)
    except BaseException:
        STATE_FILE.write_text(json.dumps(state))
        down()
        raise
    STATE_FILE.write_text(json.dumps(state, indent=2))
    print(f"stack: up in {time.monotonic() - started:.1f}s", file=sys.stderr)
    return state


def stop_group(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group (MLflow spawns workers), then SIGKILL what is left."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except OSError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except OSError:
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        os.killpg(pid, signal.SIGKILL)


def down() -> None:
    try:
        state = json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return
    for entry in [*state.get("prometheus", {}).values(), state.get("mlflow", {})]:
        if entry.get("pid"):
            stop_group(entry["pid"])
    STATE_FILE.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "status"
    if command == "up":
        up()
    elif command == "down":
        down()
    elif command == "status":
        state = read_state()
        print(json.dumps(state, indent=2) if state else "stack: not running")
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
