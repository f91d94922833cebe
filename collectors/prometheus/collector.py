"""All clusters of the continuum: one poller per cluster, polled in parallel by a bounded pool.

Each pull starts a poll of every idle cluster and waits at most ``wait_seconds``; a slow
cluster keeps its poll in flight and delivers at a later pull instead of delaying the
others, and one failing cluster never fails the rest. Clusters and signals can be
reconfigured at run time without losing the watermarks (no re-backfill).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from collectors.base import PullResult
from collectors.prometheus.poller import ClusterPoller, Progress, Transport
from collectors.prometheus.specs import ClusterTarget, CollectionSpec, Signal
from collectors.prometheus.transport import PrometheusTransport
from collectors.telemetry import CollectorTelemetry
from intelligence.vocabulary import ClusterHealth, SeriesBatch

log = logging.getLogger(__name__)


class PrometheusCollector:
    """All clusters: a bounded pool, one poll in flight per cluster, clusters added and removed at run time."""

    def __init__(
        self,
        targets: Sequence[ClusterTarget],
        signals: Sequence[Signal],
        spec: CollectionSpec,
        telemetry: CollectorTelemetry | None = None,
        transport_factory: Callable[[ClusterTarget], Transport] | None = None,
    ) -> None:
        self.signals = list(signals)
        self.spec = spec
        self.telemetry = telemetry or CollectorTelemetry()
        self._transport_factory = transport_factory or (lambda t: PrometheusTransport(t, telemetry=self.telemetry))
        self._pool = ThreadPoolExecutor(max_workers=spec.max_workers, thread_name_prefix="collect")
        self._lock = threading.Lock()
        self._pollers: dict[str, ClusterPoller] = {}
        self._inflight: dict[str, Future[list[SeriesBatch]]] = {}
        self._removed: list[str] = []
        self.progress: Progress | None = None
        for t in targets:
            self._pollers[t.name] = self._poller(t)

    def _poller(self, target: ClusterTarget) -> ClusterPoller:
        return ClusterPoller(target, self._transport_factory(target), self.signals, self.spec, self.telemetry)

    @property
    def clusters(self) -> list[str]:
        with self._lock:
            return list(self._pollers)

    def reconfigure(self, targets: Iterable[ClusterTarget], signals: Sequence[Signal]) -> tuple[list[str], list[str]]:
        """Apply a reloaded configuration; returns (added, removed) cluster names.

        A cluster whose target changed is rebuilt but keeps its watermarks (no re-backfill);
        new signals are backfilled; removed clusters are reported once by the next pull.
        """
        wanted = {t.name: t for t in targets}
        added, removed = [], []
        with self._lock:
            signals_changed = list(signals) != self.signals
            self.signals = list(signals)
            for name in list(self._pollers):
                if name not in wanted:
                    self._pollers.pop(name).transport.close()
                    self._inflight.pop(name, None)
                    self._removed.append(name)
                    self.telemetry.forget(name)
                    removed.append(name)
            for name, target in wanted.items():
                old = self._pollers.get(name)
                if old is None:
                    self._pollers[name] = self._poller(target)
                    added.append(name)
                elif old.target != target or signals_changed:
                    fresh = self._poller(target)
                    fresh.watermarks = {s: m for s, m in old.watermarks.items() if s in {x.name for x in signals}}
                    fresh.newest_sample, fresh.health = old.newest_sample, old.health
                    fresh._has_data = old._has_data & set(fresh.watermarks)
                    self._pollers[name] = fresh
        if added or removed:
            log.info("clusters reconfigured: added %s, removed %s", added or "none", removed or "none")
        return added, removed

    def health(self) -> list[ClusterHealth]:
        with self._lock:
            return [p.health for p in self._pollers.values()]

    def pull(self, now: float, wait_seconds: float | None = None) -> PullResult:
        """Start a poll of every idle cluster, wait up to ``wait_seconds`` and return what has arrived."""
        budget = self.spec.wait_seconds if wait_seconds is None else wait_seconds
        with self._lock:
            for name, poller in self._pollers.items():
                if name not in self._inflight:
                    poller.progress = self.progress
                    self._inflight[name] = self._pool.submit(poller.poll, now)
            pending = dict(self._inflight)
            removed, self._removed = self._removed, []
        deadline = time.monotonic() + budget
        while True:
            waiting = [f for f in pending.values() if not f.done()]
            remaining = deadline - time.monotonic()
            if not waiting or remaining <= 0:
                break
            wait(waiting, timeout=None if math.isinf(remaining) else remaining, return_when=FIRST_COMPLETED)
        batches: list[SeriesBatch] = []
        with self._lock:
            for name, future in pending.items():
                if not future.done() or self._inflight.get(name) is not future:
                    continue
                del self._inflight[name]
                try:
                    batches.extend(future.result())
                except Exception:  # a bug in a poller must not stop the others
                    log.exception("cluster %r: poll failed unexpectedly", name)
        return PullResult(batches, self.health(), tuple(removed))

    def backfill(self, now: float, progress: Progress | None = None) -> PullResult:
        """The first pull, waiting for every cluster however long it takes, reporting chunk progress."""
        self.progress = progress
        try:
            return self.pull(now, wait_seconds=math.inf)
        finally:
            self.progress = None

    def recollect(self, now: float, since: float | None = None) -> PullResult:
        """What every cluster has returned within its backfill window, again, watermarks untouched (a replica
        taking series over while it runs replays their history from it). Waits for every cluster."""
        with self._lock:
            pollers = dict(self._pollers)
        futures = {name: self._pool.submit(poller.recollect, now, since) for name, poller in pollers.items()}
        batches: list[SeriesBatch] = []
        for name, future in futures.items():
            try:
                batches.extend(future.result())
            except Exception:  # a bug in one cluster's recollection must not lose the others'
                log.exception("cluster %r: recollecting its history failed unexpectedly", name)
        return PullResult(batches, self.health())

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for poller in self._pollers.values():
                poller.transport.close()
