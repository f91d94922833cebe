"""Clients for the member clusters and the OCM hub, and the error and retry policy every adapter shares.

Every write is read-compute-write: the patch carries the ``metadata.resourceVersion`` it was computed
from, so a concurrent edit answers 409 instead of being overwritten; the retry then re-reads and
recomputes. urllib3's own retries are switched off (they would sleep on Retry-After with the wall
clock, out of reach of the tests' fake ``sleep``); :class:`Retrier` is the one retry loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from intelligence.actuation.adapters.base import AdapterError, PermanentError, TemporaryError
from intelligence.actuation.adapters.spec import KubernetesSpec

log = logging.getLogger(__name__)

T = TypeVar("T")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
TEMPORARY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_SECONDS = 60.0


def new_api_client(spec: KubernetesSpec, context: str | None) -> client.ApiClient:
    """An ApiClient for one kubeconfig context (or the pod's service account when ``in_cluster``)."""
    configuration = client.Configuration()
    if spec.in_cluster:
        config.load_incluster_config(client_configuration=configuration)
    else:
        kubeconfig = str(spec.kubeconfig) if spec.kubeconfig else None
        config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration, persist_config=False
        )
    configuration.retries = urllib3.Retry(0, respect_retry_after_header=False, raise_on_status=False)
    return client.ApiClient(configuration)


class ClusterClients:
    """One ApiClient per member cluster and one for the hub, made on first use (nothing is contacted before)."""

    def __init__(
        self,
        spec: KubernetesSpec,
        factory: Callable[[KubernetesSpec, str | None], client.ApiClient] = new_api_client,
    ) -> None:
        self._spec = spec
        self._factory = factory
        self._clients: dict[str | None, client.ApiClient] = {}

    def context_of(self, cluster: str) -> str | None:
        return self._spec.cluster_contexts.get(cluster, self._spec.context)

    def member(self, cluster: str) -> client.ApiClient:
        return self._get(self.context_of(cluster))

    def hub(self) -> client.ApiClient:
        return self._get(self._spec.hub_context or self._spec.context)

    def _get(self, context: str | None) -> client.ApiClient:
        if context not in self._clients:
            try:
                self._clients[context] = self._factory(self._spec, context)
            except (config.ConfigException, OSError, ValueError) as exc:
                named = f"context {context!r}" if context else "current context"
                where = "in-cluster config" if self._spec.in_cluster else f"kubeconfig {named}"
                raise PermanentError(where, f"cannot load: {exc}") from exc
        return self._clients[context]

    def check(self) -> None:
        """Load every configured context now (reads files, contacts nothing): a bad kubeconfig fails at start."""
        contexts = {self._spec.context, self._spec.hub_context, *self._spec.cluster_contexts.values()}
        for context in sorted(contexts, key=str):
            self._get(context)

    def close(self) -> None:
        for api_client in self._clients.values():
            api_client.close()
        self._clients.clear()


def api_message(exc: ApiException) -> str:
    """The ``message`` of the Status the API answered, else the HTTP reason."""
    try:
        status = json.loads(exc.body or "")
    except (TypeError, ValueError):
        status = None
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return str(exc.reason or "no reason given")


def to_adapter_error(exc: Exception, obj: str) -> AdapterError:
    """Temporary: 409 (after the re-reads), 429, 5xx, connection and timeouts. Permanent: the rest."""
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, ApiException):
        status = int(exc.status) if exc.status is not None else None
        if status is None or status in TEMPORARY_STATUSES or status >= 500:
            return TemporaryError(obj, api_message(exc), status)
        return PermanentError(obj, api_message(exc), status)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        return TemporaryError(obj, f"cannot reach the API server: {exc}")
    return PermanentError(obj, f"{type(exc).__name__}: {exc}")


def retry_after_seconds(exc: ApiException) -> float | None:
    value = (exc.headers or {}).get("Retry-After")
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_SECONDS) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to the backoff


@dataclass(frozen=True, slots=True)
class Retrier:
    """Exponential backoff over temporary failures; ``sleep`` is injected so tests never wait.

    ``attempt`` must re-read what it writes: retrying after a 409 then recomputes from fresh state.
    """

    retries: int
    backoff_seconds: float
    sleep: Callable[[float], None]

    @classmethod
    def from_spec(cls, spec: KubernetesSpec, sleep: Callable[[float], None]) -> Retrier:
        return cls(spec.retries, spec.backoff_seconds, sleep)

    def run(self, obj: str, attempt: Callable[[], T]) -> T:
        delay = self.backoff_seconds
        for number in range(self.retries + 1):
            try:
                return attempt()
            except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
                error = to_adapter_error(exc, obj)
                if not error.temporary or number == self.retries:
                    raise error from exc
                wait = delay
                if isinstance(exc, ApiException) and exc.status in (429, 503):
                    wait = max(retry_after_seconds(exc) or 0.0, delay)
                log.warning("%s; retry %d/%d in %.2fs", error, number + 1, self.retries, wait)
                self.sleep(wait)
                delay *= 2
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Kube:
    """One cluster's API as the adapters use it: the client, its name for messages, the timeout, the retrier."""

    api: client.ApiClient
    cluster: str
    timeout: float
    retrier: Retrier

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    def name(self, kind: str, namespace: str | None, name: str) -> str:
        """``Kind ns/name @ cluster``, how errors and logs name an object."""
        where = f"{namespace}/{name}" if namespace else name
        return f"{kind} {where} @ {self.cluster}"


def get_or_none(read: Callable[[], T]) -> T | None:
    """``read()``, or None when the object is absent (404)."""
    try:
        return read()
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def as_object(value: object) -> dict[str, Any]:
    """CustomObjectsApi answers are typed ``object``; they are JSON objects."""
    if not isinstance(value, dict):
        raise TypeError(f"expected a JSON object from the API, got {type(value).__name__}")
    return value


def annotations_of(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def resource_version(obj: dict[str, Any]) -> str:
    return str(obj["metadata"]["resourceVersion"])
