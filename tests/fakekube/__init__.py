"""An HTTP-level fake Kubernetes API server for the adapter tests, built on kmock.

The official ``kubernetes`` client is synchronous, so the server runs on its own event loop in a
background thread; each :class:`FakeKube` is one cluster (use several for a hub and its members)::

    with FakeKube() as hub, FakeKube() as edge:
        hub.seed({"apiVersion": "cluster.open-cluster-management.io/v1", "kind": "ManagedCluster", ...})
        write_kubeconfig(tmp_path / "kubeconfig", {"hub": hub, "edge": edge})
        hub.fail_next("PATCH", "/managedclusters/", 409)
        ...
        assert len(hub.requests_matching("PATCH", "/managedclusters/")) == 2

What it does not model: admission/defaulting/validation beyond metadata.name, controllers (nothing
reconciles: a Knative Service never gets a new Revision, a Deployment's status never follows its
spec), server-side apply, strategic merge by key (a JSON merge stands in), watch selectors and
timeouts, list pagination, namespace existence and deletion cascades, authentication.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import kmock
import yaml

from tests.fakekube.documents import MERGE_PATCH
from tests.fakekube.errors import ApiError
from tests.fakekube.rbac import RBAC_FILE, Authorizer
from tests.fakekube.resources import ResourceType, type_of
from tests.fakekube.server import Controls, FakeKubeEmulator, Fault, Hook, LoggedRequest
from tests.fakekube.store import ObjectStore

__all__ = ["ApiError", "FakeKube", "LoggedRequest", "running_fake_kubes", "write_kubeconfig"]

_START_TIMEOUT_SECONDS = 10.0


class FakeKube:
    """One fake cluster. ``enforce_rbac`` answers 403 for what deploy/components/enact/rbac.yaml does not grant."""

    def __init__(self, *, enforce_rbac: bool = True, rbac_file: Path = RBAC_FILE) -> None:
        self._rbac_file = rbac_file
        self.controls = Controls(Authorizer.load(rbac_file) if enforce_rbac else None)
        self.emulator: FakeKubeEmulator | None = None
        self.url = ""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    def __enter__(self) -> FakeKube:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fakekube", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_SECONDS) or self._failure is not None:
            raise RuntimeError("the fake Kubernetes API server did not start") from self._failure

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(_START_TIMEOUT_SECONDS)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._failure = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.emulator = FakeKubeEmulator(controls=self.controls, loop=asyncio.get_running_loop())
        async with self.emulator, kmock.Server(self.emulator) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def enforce_rbac(self, enforce: bool = True) -> None:
        """Switch RBAC off for tests of API mechanics the service account is not granted (PUT on a CRD)."""
        self.controls.authorizer = Authorizer.load(self._rbac_file) if enforce else None

    @property
    def _store(self) -> Any:
        assert self.emulator is not None, "the fake is not running"
        return self.emulator.store

    # -- state, bypassing RBAC and the request log --------------------------------------------------

    def seed(self, *objects: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Create objects as a controller would: status kept, no RBAC, not in the request log."""
        created = []
        for obj in objects:
            resource_type = type_of(obj["apiVersion"], obj["kind"])
            namespace = obj.get("metadata", {}).get("namespace")
            created.append(self._store.create(resource_type, namespace, dict(obj), keep_status=True))
        return created

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The stored object (a copy), or None."""
        try:
            return self._store.get(type_of(api_version, kind), namespace, name, None)  # type: ignore[no-any-return]
        except ApiError:
            return None

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return self._store.list(type_of(api_version, kind), namespace)["items"]  # type: ignore[no-any-return]

    def edit(self, api_version: str, kind: str, namespace: str | None, name: str, patch: Mapping[str, Any]) -> None:
        """A merge patch by someone else (a concurrent writer): bumps resourceVersion, status included."""
        resource_type = type_of(api_version, kind)
        self._store.patch(resource_type, namespace, name, MERGE_PATCH, dict(patch), None)
        if "status" in patch:
            self._store.patch(resource_type, namespace, name, MERGE_PATCH, {"status": patch["status"]}, "status")

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> None:
        self._store.delete(type_of(api_version, kind), namespace, name)

    def history(self, api_version: str, kind: str, namespace: str | None, name: str) -> list[dict[str, Any] | None]:
        """Every stored version (None marks a deletion), from kmock's object history."""
        resource_type: ResourceType = type_of(api_version, kind)
        assert self.emulator is not None
        versions = self.emulator.objects[ObjectStore.key(resource_type, namespace, name)].history
        return [None if version is None else copy.deepcopy(dict(version.raw)) for version in versions]

    # -- fault injection and the request log ----------------------------------------------------------

    def fail_next(
        self, method: str, path_contains: str, status: int, *, times: int = 1, retry_after: float | None = None
    ) -> None:
        """The next ``times`` requests matching method and path substring answer ``status`` (a Status body)."""
        self.controls.faults.append(Fault(method, path_contains, status, times, retry_after))

    def before(self, method: str, path_contains: str, action: Callable[[], None], *, times: int = 1) -> None:
        """Run ``action`` in the server thread just before the next matching request is handled."""
        self.controls.hooks.append(Hook(method, path_contains, action, times))

    @property
    def requests(self) -> list[LoggedRequest]:
        return list(self.controls.log)

    def requests_matching(self, method: str | None = None, path_contains: str = "") -> list[LoggedRequest]:
        return [
            logged
            for logged in self.controls.log
            if (method is None or logged.method == method.upper()) and path_contains in logged.path
        ]

    def writes(self) -> list[LoggedRequest]:
        return [logged for logged in self.controls.log if logged.method in ("POST", "PUT", "PATCH", "DELETE")]

    def clear_log(self) -> None:
        self.controls.log.clear()

    def kubeconfig(self, path: Path, contexts: tuple[str, ...] = ("default",)) -> Path:
        """A kubeconfig whose contexts all point at this fake; several fakes: :func:`write_kubeconfig`."""
        return write_kubeconfig(path, dict.fromkeys(contexts, self))


def write_kubeconfig(path: Path, contexts: Mapping[str, FakeKube], current: str | None = None) -> Path:
    """One kubeconfig, a context (and cluster and user) per name, each pointing at its fake."""
    names = list(contexts)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": fake.url}} for name, fake in contexts.items()],
        "users": [{"name": name, "user": {"token": f"fake-token-{name}"}} for name in names],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}} for name in names],
        "current-context": current or names[0],
    }
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def running_fake_kubes(*names: str, enforce_rbac: bool = True) -> Iterator[dict[str, FakeKube]]:
    """Several fakes at once (a hub and members), stopped together."""
    fakes: dict[str, FakeKube] = {}
    try:
        for name in names:
            fakes[name] = FakeKube(enforce_rbac=enforce_rbac)
            fakes[name].start()
        yield fakes
    finally:
        for fake in fakes.values():
            fake.stop()
