"""Which model spec each signal runs: the ``champion`` of its registered model in MLflow.

The watcher talks to the registry on its own thread (never the engine's): on a first
start it registers the configured kinds of every signal and makes them champion; then
it polls, and the engine applies a newly promoted champion at its next step (the
series of that signal restart on the new model). The champions in use are kept in
``state_dir/champions.json`` so a restart runs (and loads checkpoints of) the same
models before MLflow has even answered.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

FILE = "champions.json"


def registry_name(signal: str) -> str:
    return f"icos-{signal}"


class Registry(Protocol):
    tracking_uri: str

    def ensure_champion(self, name: str, spec: dict[str, Any]) -> Any: ...


def load_active(state_dir: Path) -> dict[str, dict[str, Any]]:
    """``{signal: {"version": n, "spec": {...}}}`` of the champions last applied (empty if none)."""
    path = state_dir / FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.error("%s cannot be read (%s); using the configured models until MLflow answers", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def save_active(state_dir: Path, active: dict[str, dict[str, Any]]) -> None:
    path = state_dir / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(active, indent=2, sort_keys=True))
    tmp.replace(path)


class ChampionWatcher:
    """Polls the registry for the champion of every signal; ``changes`` hands new ones to the engine."""

    def __init__(self, registry: Registry, configured: dict[str, dict[str, Any]], poll_seconds: float = 60.0) -> None:
        self.registry = registry
        self.configured = configured  # {signal: spec from the settings}, registered on a first start
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._latest: dict[str, dict[str, Any]] = {}
        self.state = "starting"
        self.detail = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> None:
        """Ask the registry for every signal's champion (registering the configured spec if there is none)."""
        try:
            latest = {}
            for signal, spec in sorted(self.configured.items()):
                info = self.registry.ensure_champion(registry_name(signal), spec)
                latest[signal] = {"version": int(info.version), "spec": info.spec}
        except Exception as exc:  # noqa: BLE001 - MLflow down or slow: keep the models we run
            if self.state != "degraded":
                log.warning(
                    "model registry at %s unavailable, keeping the current models: %s", self.registry.tracking_uri, exc
                )
            self.state, self.detail = "degraded", f"{type(exc).__name__}: {exc}"[:300]
            return
        with self._lock:
            self._latest = latest
        self.state, self.detail = "ok", ""

    def changes(self, active: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The champions that differ from ``active`` (same shape as :func:`load_active`)."""
        with self._lock:
            latest = dict(self._latest)
        return {s: c for s, c in latest.items() if active.get(s, {}).get("spec") != c["spec"]}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="champion-watcher", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_seconds)

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
