"""The test stack: three real Prometheus servers with backfilled TSDBs, a real MLflow server and PostgreSQL.

    python -m tests.stack up      # start (idempotent), write tests/.stack/stack.json
    python -m tests.stack down    # stop what `up` started
    python -m tests.stack status

Every Prometheus holds a few days of one cluster of the simulated continuum at a
60 s step (cAdvisor CPU counters, memory gauges, Knative request counters,
labelled by namespace and workload), written as OpenMetrics and loaded with
``promtool tsdb create-blocks-from openmetrics``. Tests recompute the expected
values from the same seed. Readiness is polled, never slept for.

PostgreSQL 15 (Debian's ``postgresql-15``) runs a throwaway cluster on a free loopback
port with trust authentication for the role ``icos`` and a database ``icos``; tests
create more with ``create_database``. ``initdb`` and ``postgres`` refuse to run as root,
so as root they run as the ``postgres`` user, in a directory that user owns: under the
stack directory when it can reach it, else a unique one under /tmp (removed by ``down``).
Durability is switched off (``fsync=off``): the data is thrown away anyway.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from collectors.simulated import SimulatedContinuum

ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = Path(os.environ.get("ICOS_TEST_STACK_DIR", ROOT / "tests" / ".stack"))
STATE_FILE = STACK_DIR / "stack.json"
CLUSTERS = ("cloud-1", "fog-1", "edge-1")
SEED = 11
STEP = 60
DAYS = 3.0
PG_BIN = Path(os.environ.get("ICOS_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "icos"  # the cluster's superuser (initdb -U), trusted on loopback and the socket
PG_DATABASE = "icos"


def find_binary(name: str) -> str:
    """On PATH, or unpacked from the Debian package into .cache/prometheus by `make stack-up` (or `make test`)."""
    for candidate in (ROOT / ".cache" / "prometheus" / "usr" / "bin" / name, shutil.which(name)):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    raise SystemExit(f"{name} not found: run `make stack-up` (unpacks Debian's prometheus package) or install it")


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


def _start(
    cmd: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            cwd=cwd,
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


def pg_binary(name: str) -> str:
    """From Debian's postgresql-15 (not on PATH: Debian puts only wrappers there)."""
    path = PG_BIN / name
    if path.is_file():
        return str(path)
    raise SystemExit(f"{path} not found: run `make stack-up` (installs Debian's postgresql-15) or set ICOS_TEST_PG_BIN")


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb, postgres and pg_ctl refuse to run as root: as root, run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _postgres_can_use(base: Path) -> bool:
    """The postgres user can write in ``base`` (every parent traversable) and its socket path fits in sun_path."""
    if len(str(base / ".s.PGSQL.65535")) > 100:
        return False
    if os.geteuid() != 0:
        return True
    check = subprocess.run(_as_postgres(["test", "-w", str(base), "-a", "-x", str(base)]), cwd="/", check=False)
    return check.returncode == 0


def _postgres_dir() -> tuple[Path, bool]:
    """A fresh directory the server's user owns: ``STACK_DIR/postgres``, or a unique one under /tmp (then True)."""
    owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    candidates: list[tuple[Path | None, bool]] = [(STACK_DIR / "postgres", False), (None, True)]
    for path, temporary in candidates:
        if path is None:
            path = Path(tempfile.mkdtemp(prefix="icos-test-postgres-", dir="/tmp"))
        else:
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir(parents=True)
        path.chmod(0o700)
        if owner is not None:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        if _postgres_can_use(path):
            return path, temporary
        shutil.rmtree(path, ignore_errors=True)
    raise SystemExit("no directory the postgres user can own: set ICOS_TEST_STACK_DIR to a path it can traverse")


def database_url(entry: dict[str, Any], name: str) -> str:
    """The SQLAlchemy URL of database ``name`` on the stack's PostgreSQL (``entry``: the state's "postgres")."""
    return make_url(entry["url"]).set(database=name).render_as_string(hide_password=False)


def _admin(entry: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(
        host="127.0.0.1", port=entry["port"], user=PG_USER, dbname="postgres", autocommit=True, connect_timeout=10
    )


def create_database(entry: dict[str, Any], name: str) -> str:
    """Create database ``name`` on the stack's PostgreSQL; returns its SQLAlchemy URL."""
    with _admin(entry) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return database_url(entry, name)


def drop_database(entry: dict[str, Any], name: str) -> None:
    """Drop database ``name``, closing what is still connected to it."""
    with _admin(entry) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def wait_postgres(port: int, proc: subprocess.Popen[bytes], deadline_s: float, log: Path) -> None:
    """Poll ``pg_isready`` until the server accepts connections."""
    deadline = time.monotonic() + deadline_s
    isready = [pg_binary("pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", PG_USER, "-d", "postgres"]
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"PostgreSQL exited with {proc.returncode} before it was ready; see {log}:\n"
                + log.read_text(errors="replace")[-2000:]
            )
        if subprocess.run([*isready, "-t", "1"], check=False).returncode == 0:
            return
        time.sleep(0.1)  # polling interval of a readiness probe
    raise SystemExit(f"PostgreSQL not ready on port {port} after {deadline_s:.0f}s; see {log}")


def start_postgres() -> dict[str, Any]:
    """A fresh cluster (``initdb -A trust -U icos``) served on a free loopback port, with a database ``icos``."""
    base, temporary = _postgres_dir()
    pgdata = base / "data"
    log = base / "postgres.log"
    init = subprocess.run(
        _as_postgres(
            [pg_binary("initdb"), "-D", str(pgdata), "-A", "trust", "-U", PG_USER, "-E", "UTF8", "--locale=C", "-N"]
        ),
        cwd=base,
        capture_output=True,
        check=False,
    )
    if init.returncode != 0:
        if temporary:
            shutil.rmtree(base, ignore_errors=True)
        raise SystemExit(f"initdb failed ({init.returncode}):\n{init.stdout.decode()}{init.stderr.decode()}")
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "unix_socket_directories": str(base),
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
    }
    proc = _start(
        _as_postgres(
            [
                pg_binary("postgres"),
                "-D",
                str(pgdata),
                "-p",
                str(port),
                *(arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")),
            ]
        ),
        log,
        cwd=base,
    )
    url = f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/{PG_DATABASE}"
    entry = {"url": url, "port": port, "pgdata": str(pgdata), "pid": proc.pid, "dir": str(base), "tmp": temporary}
    try:
        wait_postgres(port, proc, 30, log)
        create_database(entry, PG_DATABASE)
    except BaseException:
        stop_postgres(entry)
        raise
    return entry


def stop_postgres(entry: dict[str, Any]) -> None:
    """``pg_ctl stop -m fast`` (clients disconnected, no waiting for them), then whatever is left of the group."""
    pgdata = entry.get("pgdata")
    if pgdata and Path(pgdata, "postmaster.pid").exists():
        subprocess.run(
            _as_postgres([pg_binary("pg_ctl"), "stop", "-D", pgdata, "-m", "fast", "-t", "30", "-s"]),
            cwd="/",
            check=False,
        )
    if entry.get("pid"):
        stop_group(entry["pid"])
    if entry.get("tmp") and entry.get("dir"):
        shutil.rmtree(entry["dir"], ignore_errors=True)


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
    if not state.get("postgres", {}).get("pid"):
        return None  # a stack started before PostgreSQL was part of it
    pids = [p["pid"] for p in state["prometheus"].values()] + [state["mlflow"]["pid"], state["postgres"]["pid"]]
    return state if all(_alive(p) for p in pids) else None


def up() -> dict[str, Any]:
    state = read_state()
    if state is not None:
        return state
    down()
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    start, end = data_window(time.time())
    state = {
        "data": {"seed": SEED, "step": STEP, "start": start, "end": end},
        "prometheus": {},
        "mlflow": {},
        "postgres": {},
    }
    try:
        pg_started = time.monotonic()
        state["postgres"] = start_postgres()
        print(
            f"stack: PostgreSQL at {state['postgres']['url']} ({time.monotonic() - pg_started:.1f}s)", file=sys.stderr
        )
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
    stop_postgres(state.get("postgres", {}))
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
