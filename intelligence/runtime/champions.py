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
METRIC = "live_relative_mae"  # one-step MAE over the naive forecast's, on live data


def registry_name(signal: str) -> str:
    return f"icos-{signal}"


class Registry(Protocol):
    tracking_uri: str

    def ensure_champion(self, name: str, spec: dict[str, Any]) -> Any: ...

    def by_alias(self, name: str, alias: str) -> Any: ...

    def record_metrics(self, name: str, version: int, metrics: dict[str, float]) -> None: ...

    def promote(self, name: str, version: int, metric: str = ..., margin: float = ...) -> Any: ...


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
        self._challengers: dict[str, dict[str, Any]] = {}
        self._requests: list[tuple[str, dict[int, float], int, float]] = []
        self.state = "starting"
        self.detail = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> None:
        """Ask the registry for every signal's champion (registering the configured spec if there is none)."""
        try:
            self._promote_requested()
            latest, challengers = {}, {}
            for signal, spec in sorted(self.configured.items()):
                info = self.registry.ensure_champion(registry_name(signal), spec)
                latest[signal] = {"version": int(info.version), "spec": info.spec}
                challenger = self.registry.by_alias(registry_name(signal), "challenger")
                if challenger is not None and challenger.version != info.version:
                    challengers[signal] = {"version": int(challenger.version), "spec": challenger.spec}
        except Exception as exc:  # noqa: BLE001 - MLflow down or slow: keep the models we run
            if self.state != "degraded":
                log.warning(
                    "model registry at %s unavailable, keeping the current models: %s", self.registry.tracking_uri, exc
                )
            self.state, self.detail = "degraded", f"{type(exc).__name__}: {exc}"[:300]
            return
        with self._lock:
            self._latest, self._challengers = latest, challengers
        self.state, self.detail = "ok", ""

    def challengers(self) -> dict[str, dict[str, Any]]:
        """``{signal: {"version", "spec"}}`` of the challengers to run in shadow."""
        with self._lock:
            return dict(self._challengers)

    def request_promotion(self, signal: str, measured: dict[int, float], version: int, margin: float) -> None:
        """Ask (from the engine thread) to promote ``version``; done on the watcher's thread at its next poll.

        ``measured`` is the live one-step relative MAE per version over the evaluation window.
        """
        with self._lock:
            self._requests.append((signal, measured, version, margin))

    def _promote_requested(self) -> None:
        with self._lock:
            requests, self._requests = self._requests, []
        for signal, measured, version, margin in requests:
            name = registry_name(signal)
            for v, value in measured.items():
                self.registry.record_metrics(name, v, {METRIC: value})
            try:
                self.registry.promote(name, version, metric=METRIC, margin=margin)
            except Exception as exc:  # noqa: BLE001 - RegistryError: refused with the evidence
                log.info("challenger %s version %d not promoted: %s", name, version, exc)

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
