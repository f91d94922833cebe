"""Open Cluster Management on the hub: placement scores, ManifestWork moves, cluster taints.

* Scores: an ``AddOnPlacementScore`` per ManagedCluster namespace (namespace == cluster name on the
  hub), written through the ``status`` subresource where OCM reads it, with ``validUntil`` so a stale
  forecast stops steering placement on its own.
* Moves: create the ManifestWork in the destination, read it back, then delete the source one. A
  crash half-way leaves at most a duplicate, never a lost workload, and a re-run completes the move.
* Taints: a JSON patch guarded by a ``test`` of ``/metadata/resourceVersion``. A failed test is a 422
  from the API; when the re-read shows a new resourceVersion it is a conflict, retried like a 409.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from intelligence.actuation.adapters.base import Applied, ClusterScore, PermanentError, TemporaryError
from intelligence.actuation.adapters.kube import JSON_PATCH, MERGE_PATCH, Kube, as_object, get_or_none, resource_version

log = logging.getLogger(__name__)

CLUSTER = ("cluster.open-cluster-management.io", "v1")
PLACEMENT = ("cluster.open-cluster-management.io", "v1beta1")
SCORES = ("cluster.open-cluster-management.io", "v1alpha1")
WORK = ("work.open-cluster-management.io", "v1")
TAINT_EFFECTS = ("NoSelect", "PreferNoSelect")
SCORE_RANGE = (-100, 100)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def clamp_score(value: float) -> int:
    return max(SCORE_RANGE[0], min(SCORE_RANGE[1], round(value)))


class OcmHub:
    def __init__(self, kube: Kube, workload_label: str, now: Callable[[], datetime]) -> None:
        self._kube = kube
        self._label = workload_label
        self._now = now

    def _get(self, api: tuple[str, str], plural: str, namespace: str | None, name: str) -> dict[str, Any]:
        custom, timeout = self._kube.custom, self._kube.timeout
        if namespace is None:
            return as_object(custom.get_cluster_custom_object(*api, plural, name, _request_timeout=timeout))
        return as_object(custom.get_namespaced_custom_object(*api, namespace, plural, name, _request_timeout=timeout))

    # -- placement scores -------------------------------------------------------------------------------

    def publish_placement_scores(
        self, name: str, scores: Sequence[ClusterScore], valid_until: datetime
    ) -> list[Applied]:
        return [self._publish_one(name, score, valid_until) for score in scores]

    def _publish_one(self, name: str, score: ClusterScore, valid_until: datetime) -> Applied:
        namespace, value = score.cluster, clamp_score(score.value)
        obj = self._kube.name("AddOnPlacementScore", namespace, name)
        wanted = {"scores": [{"name": name, "value": value}], "validUntil": rfc3339(valid_until)}

        def in_force(current: Mapping[str, Any]) -> bool:
            status = current.get("status") or {}
            return all(status.get(key) == wanted_value for key, wanted_value in wanted.items())

        def attempt() -> bool:
            current = get_or_none(lambda: self._get(SCORES, "addonplacementscores", namespace, name))
            if current is None:
                body = {
                    "apiVersion": "/".join(SCORES),
                    "kind": "AddOnPlacementScore",
                    "metadata": {"name": name, "namespace": namespace},
                }
                current = as_object(
                    self._kube.custom.create_namespaced_custom_object(
                        *SCORES, namespace, "addonplacementscores", body, _request_timeout=self._kube.timeout
                    )
                )
                log.info("created %s", obj)
            if in_force(current):
                return False
            condition = {
                "type": "ScoresPublished",
                "status": "True",
                "reason": "ForecastHeadroom",
                "message": f"headroom forecast by icos-intelligence, valid until {wanted['validUntil']}",
                "lastTransitionTime": rfc3339(self._now()),
            }
            patch = {
                "metadata": {"resourceVersion": resource_version(current)},
                "status": {**wanted, "conditions": [condition]},
            }
            self._kube.custom.patch_namespaced_custom_object_status(
                *SCORES, namespace, "addonplacementscores", name, patch, _request_timeout=self._kube.timeout
            )
            log.info("published score %d for cluster %s in %s", value, namespace, obj)
            return True

        changed = self._kube.retrier.run(obj, attempt)
        current = self._kube.retrier.run(obj, lambda: self._get(SCORES, "addonplacementscores", namespace, name))
        if not in_force(current):
            raise TemporaryError(obj, f"read back status {current.get('status')}, wrote {wanted}")
        return Applied(obj, changed, {"value": value, "valid_until": wanted["validUntil"]})

    # -- ManifestWork moves -----------------------------------------------------------------------------

    def _works(self, namespace: str | None, workload: str) -> list[dict[str, Any]]:
        selector = f"{self._label}={workload}"
        custom, timeout = self._kube.custom, self._kube.timeout
        if namespace is None:
            listed = custom.list_cluster_custom_object(
                *WORK, "manifestworks", label_selector=selector, _request_timeout=timeout
            )
        else:
            listed = custom.list_namespaced_custom_object(
                *WORK, namespace, "manifestworks", label_selector=selector, _request_timeout=timeout
            )
        return list(as_object(listed).get("items") or [])

    def workload_placement(self, namespace: str, name: str) -> str | None:
        """The hub namespace (= cluster) of the workload's ManifestWork; the oldest while a move is half-done."""
        workload = f"{namespace}.{name}"
        works = self._kube.retrier.run(
            self._kube.name("ManifestWork", None, f"{self._label}={workload}"), lambda: self._works(None, workload)
        )
        if not works:
            return None
        works.sort(
            key=lambda work: (work["metadata"].get("creationTimestamp", ""), int(work["metadata"]["resourceVersion"]))
        )
        if len(works) > 1:
            clusters = [work["metadata"]["namespace"] for work in works]
            log.warning("workload %s has ManifestWorks in %s (a move half-done?)", workload, clusters)
        return str(works[0]["metadata"]["namespace"])

    def move_workload(self, namespace: str, name: str, source: str, destination: str) -> Applied:
        workload = f"{namespace}.{name}"
        label = f"{self._label}={workload}"
        obj = f"ManifestWork {label} {source} -> {destination} @ {self._kube.cluster}"
        if source == destination:
            raise PermanentError(obj, "source and destination are the same cluster")
        sources = self._kube.retrier.run(obj, lambda: self._works(source, workload))
        if len(sources) > 1:
            raise PermanentError(obj, f"{len(sources)} ManifestWorks carry the label in {source}, expected one")
        if not sources:
            arrived = self._kube.retrier.run(obj, lambda: self._works(destination, workload))
            if arrived:
                return Applied(obj, False, {"cluster": destination}, "already moved")
            raise PermanentError(obj, f"no ManifestWork in {source} or {destination} carries the label", 404)
        work = sources[0]
        work_name = work["metadata"]["name"]
        copied = self._ensure_copy(work, destination)
        self._delete_source(source, work_name)
        return Applied(obj, True, {"cluster": destination}, "created in destination" if copied else "source removed")

    def _ensure_copy(self, work: Mapping[str, Any], destination: str) -> bool:
        """Create (or align) the work in ``destination`` and read it back; True if anything was written."""
        name = work["metadata"]["name"]
        obj = self._kube.name("ManifestWork", destination, name)
        meta = work["metadata"]
        copy = {
            "apiVersion": "/".join(WORK),
            "kind": "ManifestWork",
            "metadata": {
                "name": name,
                "namespace": destination,
                "labels": dict(meta.get("labels") or {}),
                "annotations": dict(meta.get("annotations") or {}),
            },
            "spec": work.get("spec") or {},
        }

        def attempt() -> bool:
            current = get_or_none(lambda: self._get(WORK, "manifestworks", destination, name))
            if current is None:
                self._kube.custom.create_namespaced_custom_object(
                    *WORK, destination, "manifestworks", copy, _request_timeout=self._kube.timeout
                )
                log.info("created %s (copy of %s/%s)", obj, meta["namespace"], name)
                return True
            if current.get("spec") == copy["spec"]:
                return False
            patch = {"metadata": {"resourceVersion": resource_version(current)}, "spec": copy["spec"]}
            self._kube.custom.patch_namespaced_custom_object(
                *WORK,
                destination,
                "manifestworks",
                name,
                patch,
                _content_type=MERGE_PATCH,
                _request_timeout=self._kube.timeout,
            )
            log.info("aligned the spec of %s with %s/%s", obj, meta["namespace"], name)
            return True

        written = self._kube.retrier.run(obj, attempt)
        arrived = self._kube.retrier.run(obj, lambda: self._get(WORK, "manifestworks", destination, name))
        if arrived.get("spec") != copy["spec"]:
            raise TemporaryError(obj, "read back a different spec than the source's")
        return written

    def _delete_source(self, source: str, name: str) -> None:
        obj = self._kube.name("ManifestWork", source, name)

        def attempt() -> None:
            try:
                self._kube.custom.delete_namespaced_custom_object(
                    *WORK, source, "manifestworks", name, _request_timeout=self._kube.timeout
                )
                log.info("deleted %s", obj)
            except ApiException as exc:
                if exc.status != 404:
                    raise

        self._kube.retrier.run(obj, attempt)

    # -- Placement pinning ---------------------------------------------------------------------------------

    def retarget_placement(self, namespace: str, placement: str, destination: str) -> Applied:
        """Pin a Placement to one cluster: its only predicate selects the ManagedCluster label ``name``.

        The predicates list is replaced whole (a merge patch replaces lists), which is the point: the
        Placement selects ``destination`` and nothing else until someone retargets it again.
        """
        obj = self._kube.name("Placement", namespace, placement)
        predicates = [{"requiredClusterSelector": {"labelSelector": {"matchLabels": {"name": destination}}}}]

        def attempt() -> bool:
            current = self._get(PLACEMENT, "placements", namespace, placement)
            if (current.get("spec") or {}).get("predicates") == predicates:
                return False
            patch = {"metadata": {"resourceVersion": resource_version(current)}, "spec": {"predicates": predicates}}
            self._kube.custom.patch_namespaced_custom_object(
                *PLACEMENT,
                namespace,
                "placements",
                placement,
                patch,
                _content_type=MERGE_PATCH,
                _request_timeout=self._kube.timeout,
            )
            log.info("pinned %s to cluster %s", obj, destination)
            return True

        changed = self._kube.retrier.run(obj, attempt)
        current = self._kube.retrier.run(obj, lambda: self._get(PLACEMENT, "placements", namespace, placement))
        if (current.get("spec") or {}).get("predicates") != predicates:
            raise TemporaryError(obj, f"read back predicates {current.get('spec', {}).get('predicates')}")
        return Applied(obj, changed, {"cluster": destination})

    # -- taints -----------------------------------------------------------------------------------------

    def cluster_taints(self, cluster: str) -> list[dict[str, str]]:
        obj = self._kube.name("ManagedCluster", None, cluster)
        current = self._kube.retrier.run(obj, lambda: self._get(CLUSTER, "managedclusters", None, cluster))
        return [dict(taint) for taint in (current.get("spec") or {}).get("taints") or []]

    def taint_cluster(self, cluster: str, key: str, value: str, effect: str) -> Applied:
        obj = self._kube.name("ManagedCluster", None, cluster)
        if effect not in TAINT_EFFECTS:
            raise PermanentError(obj, f"taint effect {effect!r} is not one of {TAINT_EFFECTS}")

        def has_taint(current: Mapping[str, Any]) -> bool:
            taints = (current.get("spec") or {}).get("taints") or []
            return any((t.get("key"), t.get("value", ""), t.get("effect")) == (key, value, effect) for t in taints)

        def attempt() -> bool:
            current = self._get(CLUSTER, "managedclusters", None, cluster)
            if has_taint(current):
                return False
            revision = resource_version(current)
            kept = [
                t
                for t in (current.get("spec") or {}).get("taints") or []
                if (t.get("key"), t.get("effect")) != (key, effect)
            ]
            taint = {"key": key, "value": value, "effect": effect, "timeAdded": rfc3339(self._now())}
            operations: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/resourceVersion", "value": revision}]
            if "spec" in current:
                operations.append({"op": "add", "path": "/spec/taints", "value": [*kept, taint]})
            else:
                operations.append({"op": "add", "path": "/spec", "value": {"taints": [taint]}})
            try:
                self._kube.custom.patch_cluster_custom_object(
                    *CLUSTER,
                    "managedclusters",
                    cluster,
                    operations,
                    _content_type=JSON_PATCH,
                    _request_timeout=self._kube.timeout,
                )
            except ApiException as exc:
                if (
                    exc.status == 422
                    and resource_version(self._get(CLUSTER, "managedclusters", None, cluster)) != revision
                ):
                    raise ApiException(
                        status=409, reason="Conflict: resourceVersion changed under the test op"
                    ) from exc
                raise
            log.info("tainted %s with %s=%s:%s", obj, key, value, effect)
            return True

        changed = self._kube.retrier.run(obj, attempt)
        if not has_taint(self._kube.retrier.run(obj, lambda: self._get(CLUSTER, "managedclusters", None, cluster))):
            raise TemporaryError(obj, f"read back without the taint {key}={value}:{effect}")
        return Applied(obj, changed, {"taint": f"{key}={value}:{effect}"})
