"""The layout of a continuum replay: its clusters, and where each workload starts and may go.

Read from a small YAML file (see docs/evaluation.md, "Continuum replay")::

    clusters:
      - {name: edge-1, tier: edge, capacity_cores: 8, labels: {site: plant-a}}
      - {name: cloud-1, tier: cloud, capacity_cores: 256}
    workloads:
      - {name: ingest, cluster: edge-1, movable: false}
      - {name: vision, cluster: edge-1, tiers: [edge, fog], labels: {site: plant-a}}

Every problem is reported with the cluster or workload it concerns. A workload's
constraints mean what the service's policy overrides mean (``movable``, ``tiers``,
``cluster_labels``): :meth:`ContinuumLayout.overrides` turns them into exactly those.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from intelligence.decisions.rescheduling import ClusterView
from intelligence.decisions.specs import OverrideSpec
from intelligence.vocabulary import Tier

NAMESPACE = "continuum"  # the namespace the replay's workloads live in (the service's decisions need one)
CLUSTER_KEYS = ("name", "tier", "capacity_cores", "labels")
WORKLOAD_KEYS = ("name", "cluster", "movable", "tiers", "labels")


class LayoutError(ValueError):
    """The layout cannot be replayed; the message names the file and the cluster or workload concerned."""


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    name: str
    tier: Tier
    capacity_cores: float
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))


@dataclass(frozen=True, slots=True)
class WorkloadSpec:
    name: str
    cluster: str  # where it runs when the replay starts
    movable: bool = True
    tiers: tuple[Tier, ...] | None = None  # allowed tiers (None: any)
    labels: Mapping[str, str] = field(default_factory=dict)  # a cluster it runs on must carry these

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def refusal(self, cluster: ClusterSpec) -> str | None:
        """Why this workload may not run on ``cluster`` (None: it may), by the rules the service decides by."""
        if self.tiers is not None and cluster.tier not in self.tiers:
            return f"tier {cluster.tier.value} is not among {', '.join(t.value for t in self.tiers)}"
        missing = [f"{k}={v}" for k, v in self.labels.items() if cluster.labels.get(k) != v]
        return f"it lacks the label(s) {', '.join(missing)}" if missing else None


@dataclass(frozen=True, slots=True)
class ContinuumLayout:
    clusters: tuple[ClusterSpec, ...]
    workloads: tuple[WorkloadSpec, ...]

    def cluster_index(self) -> dict[str, int]:
        return {c.name: i for i, c in enumerate(self.clusters)}

    def views(self) -> list[ClusterView]:
        """The clusters as the service's decider sees them (always up, never anomalous here)."""
        return [ClusterView(c.name, c.tier, c.capacity_cores, dict(c.labels)) for c in self.clusters]

    def overrides(self) -> tuple[OverrideSpec, ...]:
        """Each workload's constraints as the service's policy override for it."""
        return tuple(
            OverrideSpec(
                namespace=NAMESPACE, workload=w.name, movable=w.movable, tiers=w.tiers, cluster_labels=w.labels
            )
            for w in self.workloads
        )

    def allowed(self) -> list[list[bool]]:
        """``allowed[w][c]``: whether workload ``w`` may run on cluster ``c``."""
        return [[w.refusal(c) is None for c in self.clusters] for w in self.workloads]

    def in_order_of(self, columns: Sequence[str], source: str = "the trace") -> ContinuumLayout:
        """The same layout with its workloads in the order of the trace's columns; each column must be one."""
        by_name = {w.name: w for w in self.workloads}
        unknown = [c for c in columns if c not in by_name]
        if unknown:
            raise LayoutError(f"{source}: column(s) {', '.join(map(repr, unknown))} are not workloads of the layout")
        absent = [w.name for w in self.workloads if w.name not in set(columns)]
        if absent:
            raise LayoutError(f"workload(s) {', '.join(map(repr, absent))} of the layout have no column in {source}")
        return ContinuumLayout(self.clusters, tuple(by_name[c] for c in columns))


def load_layout(path: Path) -> ContinuumLayout:
    """Read and check a layout file (YAML)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LayoutError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LayoutError(f"{path}: not valid YAML: {exc}") from None
    return parse_layout(data, str(path))


def parse_layout(data: object, source: str = "layout") -> ContinuumLayout:
    """Check a layout given as plain data (as YAML loads it); every error names what it concerns."""
    if not isinstance(data, Mapping):
        raise LayoutError(f"{source}: expected a mapping with 'clusters' and 'workloads', got {_kind(data)}")
    extra = sorted(set(map(str, data)) - {"clusters", "workloads"})
    if extra:
        raise LayoutError(f"{source}: unknown key(s) {', '.join(extra)} (expected clusters, workloads)")
    clusters = [_cluster(item, i, source) for i, item in enumerate(_list(data, "clusters", source))]
    _unique([c.name for c in clusters], "cluster", source)
    by_name = {c.name: c for c in clusters}
    workloads = [_workload(item, i, by_name, source) for i, item in enumerate(_list(data, "workloads", source))]
    _unique([w.name for w in workloads], "workload", source)
    return ContinuumLayout(tuple(clusters), tuple(workloads))


def _list(data: Mapping[str, Any], key: str, source: str) -> list[Any]:
    items = data.get(key)
    if not isinstance(items, list) or not items:
        raise LayoutError(f"{source}: '{key}' must be a non-empty list, got {_kind(items)}")
    return items


def _fields(item: object, kind: str, i: int, allowed: Sequence[str], source: str) -> tuple[str, Mapping[str, Any]]:
    """The item's name and fields: a mapping, named, with known keys only (errors name it as best they can)."""
    if not isinstance(item, Mapping):
        raise LayoutError(f"{source}: {kind} #{i + 1} must be a mapping, got {_kind(item)}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise LayoutError(f"{source}: {kind} #{i + 1} needs a 'name' (a non-empty string), got {name!r}")
    name = name.strip()
    unknown = sorted(set(map(str, item)) - set(allowed))
    if unknown:
        raise LayoutError(
            f"{source}: {kind} {name!r}: unknown key(s) {', '.join(unknown)} (expected {', '.join(allowed)})"
        )
    return name, item


def _cluster(item: object, i: int, source: str) -> ClusterSpec:
    name, fields = _fields(item, "cluster", i, CLUSTER_KEYS, source)
    what = f"cluster {name!r}"
    capacity = fields.get("capacity_cores")
    if isinstance(capacity, bool) or not isinstance(capacity, int | float) or not 0 < capacity < math.inf:
        raise LayoutError(f"{source}: {what}: capacity_cores must be a positive number of cores, got {capacity!r}")
    return ClusterSpec(name, _tier(fields.get("tier"), what, source), float(capacity), _labels(fields, what, source))


def _workload(item: object, i: int, clusters: Mapping[str, ClusterSpec], source: str) -> WorkloadSpec:
    name, fields = _fields(item, "workload", i, WORKLOAD_KEYS, source)
    what = f"workload {name!r}"
    start = fields.get("cluster")
    if start not in clusters:
        raise LayoutError(
            f"{source}: {what}: cluster {start!r} is not a cluster of the layout (one of {', '.join(clusters)})"
        )
    movable = fields.get("movable", True)
    if not isinstance(movable, bool):
        raise LayoutError(f"{source}: {what}: movable must be true or false, got {movable!r}")
    tiers = fields.get("tiers")
    if tiers is not None:
        if not isinstance(tiers, list) or not tiers:
            raise LayoutError(f"{source}: {what}: tiers must be a non-empty list of tiers, got {_kind(tiers)}")
        tiers = tuple(dict.fromkeys(_tier(t, what, source) for t in tiers))
    workload = WorkloadSpec(name, str(start), movable, tiers, _labels(fields, what, source))
    refusal = workload.refusal(clusters[str(start)])
    if refusal is not None:
        raise LayoutError(f"{source}: {what} starts on {start}, which its constraints refuse: {refusal}")
    return workload


def _tier(value: object, what: str, source: str) -> Tier:
    choices = ", ".join(t.value for t in Tier)
    if value is None:
        raise LayoutError(f"{source}: {what} needs a 'tier' (one of {choices})")
    try:
        return Tier(str(value).lower())
    except ValueError:
        raise LayoutError(f"{source}: {what}: tier {value!r} is not one of {choices}") from None


def _labels(fields: Mapping[str, Any], what: str, source: str) -> dict[str, str]:
    labels = fields.get("labels", {}) or {}
    if not isinstance(labels, Mapping) or not all(isinstance(v, str | int | float | bool) for v in labels.values()):
        raise LayoutError(f"{source}: {what}: labels must map names to plain values, got {labels!r}")
    return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in labels.items()}


def _unique(names: Sequence[str], what: str, source: str) -> None:
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if twice:
        raise LayoutError(f"{source}: {what} name(s) {', '.join(map(repr, twice))} appear more than once")


def _kind(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]
