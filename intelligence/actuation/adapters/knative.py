"""Knative min-scale / max-scale without creating a Revision.

Editing a Service's ``spec.template`` creates a new Revision at every change (knative/serving#6717):
a scaling knob would roll the workload. So by default (``KnativeScalePath.POD_AUTOSCALER``) the
adapter finds the Revisions that serve traffic (``status.traffic`` entries with a revisionName and
percent > 0, else ``status.latestReadyRevisionName``) and merge-patches the
``autoscaling.knative.dev/min-scale`` (and ``max-scale``) annotations

* on each Revision's PodAutoscaler (``autoscaling.internal.knative.dev/v1alpha1``, same name): the
  KPA reads its bounds from the PA's annotations, and the revision reconciler only reconciles the PA
  spec, so the annotation stays (knative/serving#3547, #15480);
* on the Revision itself, so ``kubectl get rev`` shows it and versions that propagate Revision
  annotations to the PA honour it.

A Revision scaled to zero is not woken by a raised min-scale alone: with no traffic the KPA has no
metrics (desired scale -1) and, unless the PodAutoscaler is activating, returns before applying its
bounds (``Scale`` in ``pkg/reconciler/autoscaling/kpa/scaler.go``; knative/serving#10327). So when a
raise finds a serving Revision's PodAutoscaler scaled to zero (``status.actualScale`` 0, or its
``Active`` condition False), the adapter also scales the PA's ``spec.scaleTargetRef`` Deployment up
to that Revision's share through the ``scale`` subresource. The KPA leaves a scale it has no metrics
for alone; once the new pods report, it decides again within the bounds, which now hold min-scale,
and the activator sends the next request to the ready pods instead of a cold start.

With traffic split over several Revisions each gets ``ceil(value * percent / 100)``, so the total
never falls below what was asked. Values are strings, as Knative wants. ``None`` leaves a bound as
it is. ``KnativeScalePath.SERVICE_TEMPLATE`` is the explicit fallback: it patches the template
annotations and so creates a Revision (logged). Both paths write nothing when the values are already
in force and read back what they wrote.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from intelligence.actuation.adapters.base import Applied, PermanentError, TemporaryError
from intelligence.actuation.adapters.deployments import DeploymentScaler
from intelligence.actuation.adapters.kube import (
    MERGE_PATCH,
    Kube,
    annotations_of,
    as_object,
    get_or_none,
    resource_version,
)
from intelligence.actuation.adapters.spec import KnativeScalePath

log = logging.getLogger(__name__)

SERVING = ("serving.knative.dev", "v1")
AUTOSCALING = ("autoscaling.internal.knative.dev", "v1alpha1")
MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"


def serving_revisions(service: Mapping[str, Any]) -> dict[str, int]:
    """Revision name -> percent of traffic it serves now."""
    status = service.get("status") or {}
    shares: dict[str, int] = {}
    for target in status.get("traffic") or []:
        percent = int(target.get("percent") or 0)
        if target.get("revisionName") and percent > 0:
            shares[target["revisionName"]] = shares.get(target["revisionName"], 0) + percent
    if not shares and status.get("latestReadyRevisionName"):
        shares[status["latestReadyRevisionName"]] = 100
    return shares


def scaled_to_zero(pa: Mapping[str, Any]) -> bool:
    """Whether a PodAutoscaler has no pods and is not on its way to some (inactive, or actual scale 0)."""
    status = pa.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Active") == "False":
        return True
    return status.get("actualScale") == 0 and conditions.get("Active") != "True"


def split(value: int | None, percent: int) -> str | None:
    return None if value is None else str(math.ceil(value * percent / 100))


def desired_annotations(min_scale: int | None, max_scale: int | None, percent: int = 100) -> dict[str, str]:
    wanted = {MIN_SCALE: split(min_scale, percent), MAX_SCALE: split(max_scale, percent)}
    return {key: value for key, value in wanted.items() if value is not None}


def _bound(annotations: Mapping[str, str], key: str) -> int | None:
    try:
        return int(annotations[key]) if key in annotations else None
    except ValueError:
        return None


def _sum(values: list[int | None]) -> int | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


class KnativeScaler:
    def __init__(self, kube: Kube, path: KnativeScalePath = KnativeScalePath.POD_AUTOSCALER) -> None:
        self._kube = kube
        self._path = path

    # -- reads ----------------------------------------------------------------------------------------

    def _get(self, api: tuple[str, str], plural: str, namespace: str, name: str) -> dict[str, Any]:
        return as_object(
            self._kube.custom.get_namespaced_custom_object(
                *api, namespace, plural, name, _request_timeout=self._kube.timeout
            )
        )

    def _read(self, api: tuple[str, str], plural: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """A GET with the retries (a read has nothing to recompute)."""
        return self._kube.retrier.run(
            self._kube.name(kind, namespace, name), lambda: self._get(api, plural, namespace, name)
        )

    def _service(self, namespace: str, service: str) -> dict[str, Any]:
        return self._kube.retrier.run(
            self._kube.name("Knative Service", namespace, service),
            lambda: self._get(SERVING, "services", namespace, service),
        )

    def _revisions(self, namespace: str, service: str) -> dict[str, int]:
        shares = serving_revisions(self._service(namespace, service))
        if not shares:
            raise TemporaryError(self._kube.name("Knative Service", namespace, service), "no Revision is ready yet")
        return shares

    def read(self, namespace: str, service: str) -> dict[str, int | None]:
        """Bounds in force, summed over the serving Revisions (PA annotations; template on the fallback path)."""
        if self._path is KnativeScalePath.SERVICE_TEMPLATE:
            template = (self._service(namespace, service).get("spec") or {}).get("template") or {}
            annotations = annotations_of(template)
            return {"min_scale": _bound(annotations, MIN_SCALE), "max_scale": _bound(annotations, MAX_SCALE)}
        found = [
            annotations_of(self._read(AUTOSCALING, "podautoscalers", "PodAutoscaler", namespace, revision))
            for revision in self._revisions(namespace, service)
        ]
        return {
            "min_scale": _sum([_bound(annotations, MIN_SCALE) for annotations in found]),
            "max_scale": _sum([_bound(annotations, MAX_SCALE) for annotations in found]),
        }

    def in_force(self, namespace: str, service: str, min_scale: int | None, max_scale: int | None) -> bool:
        """Whether exactly these bounds are in force (per serving Revision, split by traffic as :meth:`set` does).

        Sums cannot answer this: 3 split 60/40 is written as 2 + 2.
        """
        if self._path is KnativeScalePath.SERVICE_TEMPLATE:
            template = (self._service(namespace, service).get("spec") or {}).get("template") or {}
            wanted = desired_annotations(min_scale, max_scale)
            return all(annotations_of(template).get(k) == v for k, v in wanted.items())
        for revision, percent in self._revisions(namespace, service).items():
            wanted = desired_annotations(min_scale, max_scale, percent)
            found = annotations_of(self._read(AUTOSCALING, "podautoscalers", "PodAutoscaler", namespace, revision))
            if any(found.get(k) != v for k, v in wanted.items()):
                return False
        return True

    # -- writes ---------------------------------------------------------------------------------------

    def set(self, namespace: str, service: str, min_scale: int | None, max_scale: int | None) -> Applied:
        obj = self._kube.name("Knative Service", namespace, service)
        for label, value in (("min_scale", min_scale), ("max_scale", max_scale)):
            if value is not None and value < 0:
                raise PermanentError(obj, f"{label} must not be negative, got {value}")
        if min_scale is not None and max_scale is not None and 0 < max_scale < min_scale:
            raise PermanentError(obj, f"min_scale {min_scale} above max_scale {max_scale}")
        if self._path is KnativeScalePath.SERVICE_TEMPLATE:
            return self._set_template(namespace, service, desired_annotations(min_scale, max_scale))
        changed, details = False, []
        for revision, percent in sorted(self._revisions(namespace, service).items()):
            wanted = desired_annotations(min_scale, max_scale, percent)
            for api, plural, kind in (
                (AUTOSCALING, "podautoscalers", "PodAutoscaler"),
                (SERVING, "revisions", "Revision"),
            ):
                changed |= self._annotate(api, plural, kind, namespace, revision, wanted)
            details.append(f"{revision}={wanted.get(MIN_SCALE, '-')}/{wanted.get(MAX_SCALE, '-')} ({percent}%)")
            share = int(wanted.get(MIN_SCALE) or 0)
            if share > 0:
                woken = self._wake(namespace, revision, share)
                changed |= woken is not None
                details += [woken] if woken else []
        observed = self.read(namespace, service)
        for revision, percent in self._revisions(namespace, service).items():
            wanted = desired_annotations(min_scale, max_scale, percent)
            for api, plural, kind in (
                (AUTOSCALING, "podautoscalers", "PodAutoscaler"),
                (SERVING, "revisions", "Revision"),
            ):
                self._verify(api, plural, kind, namespace, revision, wanted)
        return Applied(obj, changed, observed, "min/max per revision: " + ", ".join(details))

    def _wake(self, namespace: str, revision: str, replicas: int) -> str | None:
        """Scale a Revision scaled to zero up to ``replicas`` through its PA's scale target; what was done, if any."""
        pa = self._read(AUTOSCALING, "podautoscalers", "PodAutoscaler", namespace, revision)
        if not scaled_to_zero(pa):
            return None
        target = (pa.get("spec") or {}).get("scaleTargetRef") or {}
        name = self._kube.name("PodAutoscaler", namespace, revision)
        if target.get("kind") != "Deployment" or not str(target.get("apiVersion", "")).startswith("apps/"):
            log.warning("%s is scaled to zero and its scale target %s is not a Deployment: not woken", name, target)
            return None
        scaler = DeploymentScaler(self._kube)
        if scaler.read(namespace, target["name"]) >= replicas:
            return None
        scaler.scale(namespace, target["name"], replicas)
        log.info("%s was scaled to zero: woke Deployment %s to %d replicas", name, target["name"], replicas)
        return f"{revision} woken from zero (Deployment {target['name']} to {replicas})"

    def _annotate(
        self, api: tuple[str, str], plural: str, kind: str, namespace: str, name: str, wanted: Mapping[str, str]
    ) -> bool:
        """Merge-patch ``wanted`` into the object's annotations unless already there; True if written."""
        obj = self._kube.name(kind, namespace, name)

        def attempt() -> bool:
            current = get_or_none(lambda: self._get(api, plural, namespace, name))
            if current is None:
                raise PermanentError(obj, "not found (a serving Revision without it?)", 404)
            annotations = annotations_of(current)
            if all(annotations.get(key) == value for key, value in wanted.items()):
                return False
            patch = {"metadata": {"resourceVersion": resource_version(current), "annotations": dict(wanted)}}
            self._kube.custom.patch_namespaced_custom_object(
                *api, namespace, plural, name, patch, _content_type=MERGE_PATCH, _request_timeout=self._kube.timeout
            )
            log.info("annotated %s with %s", obj, dict(wanted))
            return True

        return self._kube.retrier.run(obj, attempt)

    def _verify(
        self, api: tuple[str, str], plural: str, kind: str, namespace: str, name: str, wanted: Mapping[str, str]
    ) -> None:
        obj = self._kube.name(kind, namespace, name)
        annotations = annotations_of(self._read(api, plural, kind, namespace, name))
        found = {key: annotations.get(key) for key in wanted}
        if found != dict(wanted):
            raise TemporaryError(obj, f"read back {found}, wrote {dict(wanted)}")

    def _set_template(self, namespace: str, service: str, wanted: Mapping[str, str]) -> Applied:
        obj = self._kube.name("Knative Service", namespace, service)

        def template_annotations(current: Mapping[str, Any]) -> dict[str, str]:
            return annotations_of((current.get("spec") or {}).get("template") or {})

        def attempt() -> bool:
            current = self._get(SERVING, "services", namespace, service)
            annotations = template_annotations(current)
            if all(annotations.get(key) == value for key, value in wanted.items()):
                return False
            patch = {
                "metadata": {"resourceVersion": resource_version(current)},
                "spec": {"template": {"metadata": {"annotations": dict(wanted)}}},
            }
            self._kube.custom.patch_namespaced_custom_object(
                *SERVING,
                namespace,
                "services",
                service,
                patch,
                _content_type=MERGE_PATCH,
                _request_timeout=self._kube.timeout,
            )
            log.info("patched the template of %s with %s: Knative creates a new Revision", obj, dict(wanted))
            return True

        changed = self._kube.retrier.run(obj, attempt)
        found = template_annotations(self._service(namespace, service))
        if any(found.get(key) != value for key, value in wanted.items()):
            raise TemporaryError(obj, f"read back {found}, wrote {dict(wanted)}")
        return Applied(obj, changed, {"min_scale": _bound(found, MIN_SCALE), "max_scale": _bound(found, MAX_SCALE)})
