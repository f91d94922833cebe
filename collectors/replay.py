"""Replay recorded metrics (a CSV or an OpenMetrics file) behind the collector interface.

CSV: a header row, ``timestamp`` first (ISO 8601 with ``Z``, ``+00:00`` or a space
for ``T``; naive means UTC; or epoch seconds), then one column per series. A column
named like a series key, ``edge-1/requests{namespace="iot",workload="ingest"}``, is
that series; any other name is a signal of the default cluster. An empty cell is a
missing value. OpenMetrics: every sample needs a timestamp; the ``cluster`` label
names the cluster, the metric name is the signal, the other labels the workload.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from collectors.base import PullResult, normalise
from intelligence.vocabulary import ClusterHealth, HealthState, SeriesBatch, SeriesKey, Tier

_KEY = re.compile(
    r"^(?P<cluster>[a-z0-9]([-a-z0-9]*[a-z0-9])?)/(?P<signal>[A-Za-z_:][A-Za-z0-9_:]*)\{(?P<labels>.*)\}$"
)
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


class ReplayFormatError(ValueError):
    """The file cannot be replayed; the message names the file, line and column."""


def parse_timestamp(text: str, where: str) -> float:
    """ISO 8601 (``Z``, ``+00:00``, or a space for ``T``; naive means UTC) or epoch seconds.

    >>> parse_timestamp("2026-01-01 00:00:05", "x"), parse_timestamp("1767225605", "x")
    (1767225605.0, 1767225605.0)
    """
    raw = text.strip()
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if math.isfinite(value):
            return value
    try:
        dt = datetime.fromisoformat(raw.replace(" ", "T", 1).replace("Z", "+00:00"))
    except ValueError:
        raise ReplayFormatError(f"{where}: timestamp {raw!r} is neither ISO 8601 nor epoch seconds") from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp()


def read_wide_csv(path: Path) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    """Returns (raw timestamps, epoch seconds, column names, values[rows, columns]); empty cell = NaN."""
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ReplayFormatError(f"{path}: cannot read: {exc.strerror}") from None
    with fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise ReplayFormatError(f"{path}: empty file, expected a header row")
        header = [h.strip() for h in header]
        if header[0].lower() != "timestamp":
            raise ReplayFormatError(f"{path}: first column must be 'timestamp', got {header[0]!r}")
        names = header[1:]
        if not names:
            raise ReplayFormatError(f"{path}: no value column after 'timestamp'")
        if len(set(names)) != len(names):
            raise ReplayFormatError(f"{path}: duplicate column names in {names}")
        raw_ts: list[str] = []
        rows: list[list[float]] = []
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ReplayFormatError(f"{path}, line {lineno}: {len(row)} cells, header has {len(header)}")
            raw_ts.append(row[0])
            values = []
            for name, cell in zip(names, row[1:], strict=True):
                cell = cell.strip()
                try:
                    values.append(float(cell) if cell else math.nan)
                except ValueError:
                    raise ReplayFormatError(
                        f"{path}, line {lineno}, column {name!r}: {cell!r} is not a number"
                    ) from None
            rows.append(values)
    if not rows:
        raise ReplayFormatError(f"{path}: no data rows")
    epoch = np.array([parse_timestamp(t, f"{path}, line {i + 2}") for i, t in enumerate(raw_ts)])
    return raw_ts, epoch, names, np.array(rows, dtype=np.float64)


def series_key_of(name: str, default_cluster: str) -> SeriesKey:
    """``cluster/signal{k="v",...}`` is that series; any other column name is a signal of ``default_cluster``.

    >>> str(series_key_of('edge-1/requests{namespace="iot",workload="ingest"}', "replay"))
    'edge-1/requests{namespace="iot",workload="ingest"}'
    >>> str(series_key_of("vm_17", "replay"))
    'replay/vm_17{}'
    """
    match = _KEY.match(name)
    if not match:
        return SeriesKey.of(default_cluster, name)
    labels = dict(_LABEL.findall(match.group("labels")))
    return SeriesKey.of(match.group("cluster"), match.group("signal"), labels)


def read_openmetrics(path: Path, default_cluster: str) -> dict[SeriesKey, tuple[np.ndarray, np.ndarray]]:
    from prometheus_client.openmetrics.parser import text_fd_to_metric_families

    stamps: dict[SeriesKey, list[float]] = {}
    values: dict[SeriesKey, list[float]] = {}
    try:
        with path.open(encoding="utf-8") as fh:
            for family in text_fd_to_metric_families(fh):
                for s in family.samples:
                    if s.timestamp is None:
                        raise ReplayFormatError(f"{path}: sample {s.name}{s.labels} has no timestamp")
                    labels = dict(s.labels)
                    cluster = labels.pop("cluster", default_cluster)
                    key = SeriesKey.of(cluster, s.name, labels)
                    stamps.setdefault(key, []).append(float(s.timestamp))
                    values.setdefault(key, []).append(float(s.value))
    except OSError as exc:
        raise ReplayFormatError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        if isinstance(exc, ReplayFormatError):
            raise
        raise ReplayFormatError(f"{path}: not valid OpenMetrics: {exc}") from None
    return {k: (np.array(stamps[k]), np.array(values[k])) for k in stamps}


class ReplayCollector:
    """Returns the recorded samples up to ``now``, each once; the recording's time is the replay's time."""

    def __init__(self, series: Mapping[SeriesKey, tuple[np.ndarray, np.ndarray]], source: str = "replay") -> None:
        self.source = source
        self._series = {k: normalise(k, ts, vs) for k, (ts, vs) in series.items()}
        if not self._series:
            raise ReplayFormatError(f"{source}: no series to replay")
        self.start = min(float(b.timestamps[0]) for b in self._series.values() if len(b))
        self.end = max(float(b.timestamps[-1]) for b in self._series.values() if len(b))
        self._watermark = -math.inf

    @classmethod
    def from_file(cls, path: Path, default_cluster: str = "replay") -> ReplayCollector:
        if path.suffix.lower() in (".om", ".prom", ".txt", ".openmetrics"):
            return cls(read_openmetrics(path, default_cluster), str(path))
        _, epoch, names, values = read_wide_csv(path)
        return cls({series_key_of(n, default_cluster): (epoch, values[:, j]) for j, n in enumerate(names)}, str(path))

    def timestamps(self) -> np.ndarray:
        """The timestamps of the longest series (to infer the spacing)."""
        return max(self._series.values(), key=len).timestamps

    def pull(self, now: float) -> PullResult:
        batches = []
        for key, b in self._series.items():
            lo = int(np.searchsorted(b.timestamps, self._watermark, side="right"))
            hi = int(np.searchsorted(b.timestamps, now, side="right"))
            if hi > lo:
                batches.append(SeriesBatch(key, b.timestamps[lo:hi], b.values[lo:hi]))
        self._watermark = max(self._watermark, now)
        state = HealthState.STALE if now > self.end else HealthState.UP
        detail = f"replay of {self.source} ended at {datetime.fromtimestamp(self.end, UTC).isoformat()}"
        clusters = sorted({k.cluster for k in self._series})
        health = [
            ClusterHealth(
                c,
                Tier.CLOUD,
                state,
                now,
                detail if state is HealthState.STALE else None,
                0.0,
                sum(1 for k in self._series if k.cluster == c),
            )
            for c in clusters
        ]
        return PullResult(batches, health)

    def recollect(self, now: float, since: float | None = None) -> PullResult:
        """Every recorded sample returned so far (from ``since`` on), again: a replay keeps the whole recording."""
        batches = []
        for key, b in self._series.items():
            lo = 0 if since is None else int(np.searchsorted(b.timestamps, since, side="left"))
            hi = int(np.searchsorted(b.timestamps, self._watermark, side="right"))
            if hi > lo:
                batches.append(SeriesBatch(key, b.timestamps[lo:hi], b.values[lo:hi]))
        return PullResult(batches)

    def close(self) -> None:
        return None


def infer_step(epoch: np.ndarray) -> float:
    """Spacing of the rows: the median of the first (up to 50) positive gaps.

    >>> infer_step(np.array([0.0, 60.0, 120.0, 300.0, 360.0]))
    60.0
    """
    gaps = np.diff(np.asarray(epoch, dtype=np.float64)[:51])
    gaps = gaps[gaps > 0]
    return float(np.median(gaps)) if gaps.size else 60.0
