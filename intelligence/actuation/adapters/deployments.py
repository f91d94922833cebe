"""Deployment replicas through the ``scale`` subresource (the RBAC grants nothing else on Deployments).

The patch carries the resourceVersion of the Scale it was computed from; a concurrent scaler gives a
409 and a re-read rather than a silently overwritten replica count.
"""

from __future__ import annotations

import logging
from typing import Any

from intelligence.actuation.adapters.base import Applied, PermanentError, TemporaryError
from intelligence.actuation.adapters.kube import MERGE_PATCH, Kube

log = logging.getLogger(__name__)


class DeploymentScaler:
    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    def read(self, namespace: str, name: str) -> int:
        obj = self._kube.name("Deployment", namespace, name)
        scale = self._kube.retrier.run(obj, lambda: self._read_scale(namespace, name))
        return int(scale.spec.replicas or 0)

    def _read_scale(self, namespace: str, name: str) -> Any:
        return self._kube.apps.read_namespaced_deployment_scale(name, namespace, _request_timeout=self._kube.timeout)

    def scale(self, namespace: str, name: str, replicas: int) -> Applied:
        obj = self._kube.name("Deployment", namespace, name)
        if replicas < 0:
            raise PermanentError(obj, f"replicas must not be negative, got {replicas}")

        def attempt() -> bool:
            scale = self._read_scale(namespace, name)
            if scale.spec.replicas == replicas:
                return False
            patch = {"metadata": {"resourceVersion": scale.metadata.resource_version}, "spec": {"replicas": replicas}}
            self._kube.apps.patch_namespaced_deployment_scale(
                name, namespace, patch, _content_type=MERGE_PATCH, _request_timeout=self._kube.timeout
            )
            log.info("scaled %s from %s to %d replicas", obj, scale.spec.replicas, replicas)
            return True

        changed = self._kube.retrier.run(obj, attempt)
        observed = self.read(namespace, name)
        if observed != replicas:
            raise TemporaryError(obj, f"read back {observed} replicas, wrote {replicas}")
        return Applied(obj, changed, {"replicas": observed})
