"""The policy in force for one workload: the global policy with the matching overrides applied.

Overrides are applied from the least to the most specific (cluster < namespace <
workload), so ``namespace: iot`` sets a default that ``workload: ingest`` refines.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from intelligence.decisions.specs import KnativeFloorSpec, PolicySpec
from intelligence.vocabulary import Mode, Tier, WorkloadKind, WorkloadRef


@dataclass(frozen=True, slots=True)
class WorkloadPolicy:
    mode: Mode
    kind: WorkloadKind
    knative: KnativeFloorSpec
    movable: bool
    tiers: tuple[Tier, ...] | None  # allowed destination tiers (None: any)
    cluster_labels: tuple[tuple[str, str], ...]  # labels a destination must carry


class PolicyBook:
    """Resolves (and caches) the policy of each workload. An immutable spec in, so caching is safe."""

    def __init__(self, spec: PolicySpec) -> None:
        self.spec = spec
        self._overrides = sorted(spec.overrides, key=lambda o: o.specificity())
        self.for_workload = lru_cache(maxsize=65_536)(self._resolve)

    @property
    def scaling_signals(self) -> list[str]:
        """Every signal some workload's Knative floor is decided on (overrides may name their own)."""
        named = {str(o.knative["signal"]) for o in self.spec.overrides if "signal" in o.knative}
        return sorted({self.spec.knative.signal} | named)

    @property
    def modes(self) -> set[Mode]:
        """Every mode some workload may be in (to know whether the adapters are needed at all)."""
        return {self.spec.mode, *(o.mode for o in self.spec.overrides if o.mode is not None)}

    def _resolve(self, ref: WorkloadRef) -> WorkloadPolicy:
        mode, kind, movable = self.spec.mode, WorkloadKind.KNATIVE, True
        knative: dict[str, object] = {}
        tiers: tuple[Tier, ...] | None = None
        labels: dict[str, str] = {}
        for o in self._overrides:
            if not o.matches(ref.cluster, ref.namespace, ref.name):
                continue
            mode = o.mode or mode
            kind = o.kind or kind
            movable = movable if o.movable is None else o.movable
            tiers = o.tiers if o.tiers is not None else tiers
            knative.update(o.knative)
            labels.update(o.cluster_labels)
        policy = replace(self.spec.knative, **knative) if knative else self.spec.knative  # type: ignore[arg-type]
        return WorkloadPolicy(mode, kind, policy, movable, tiers, tuple(sorted(labels.items())))
