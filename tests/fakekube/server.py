"""kmock's ``KubernetesEmulator`` with the API semantics of :mod:`tests.fakekube.store` in front.

kmock keeps what it does well: the aiohttp server, request parsing and recording, API discovery
(``/api``, ``/apis/...``), the object store with histories and watch streams. Every resource request
goes first through this class, which adds the request log, fault injection, RBAC and the
create/replace/patch/delete/list semantics kmock lacks (201, 409 on stale resourceVersion, PUT,
label selectors, subresources, patch content types).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import apps  # the plain DSL dispatch, below the emulator's own state changes

from tests.fakekube import errors
from tests.fakekube.resources import RESOURCE_TYPES, VERBS, ResourceType, find_type
from tests.fakekube.store import ObjectStore

if TYPE_CHECKING:
    from tests.fakekube.rbac import Authorizer


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One request as the tests see it: ``fake.requests_matching("PATCH", "/podautoscalers/")``."""

    method: str
    path: str
    query: str
    content_type: str
    status: int
    verb: str | None = None  # the RBAC verb (get, list, watch, create, update, patch, delete)
    token: str = ""  # the bearer token it came with: who sent it, when several clients share one fake


@dataclass(slots=True)
class Fault:
    """Answer the next ``remaining`` requests matching method and path substring with ``status``."""

    method: str
    path_contains: str
    status: int
    remaining: int = 1
    retry_after: float | None = None
    message: str = "injected by the test"


@dataclass(slots=True)
class Hook:
    """Run ``action`` (in the server thread) before handling the next matching request(s)."""

    method: str
    path_contains: str
    action: Callable[[], None]
    remaining: int = 1


@dataclass(frozen=True, slots=True)
class ResourcePath:
    resource_type: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


@dataclass(slots=True)
class Controls:
    """What the test thread sets and the server thread reads: faults, hooks, RBAC, and the request log it appends to."""

    authorizer: Authorizer | None
    faults: list[Fault] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    log: list[LoggedRequest] = field(default_factory=list)


def parse_resource_path(path: str) -> tuple[str, str, list[str]] | None:
    """``(group, version, rest)`` of a resource URL; None for discovery and non-API paths."""
    segments = [segment for segment in path.split("/") if segment]
    if len(segments) >= 3 and segments[0] == "api":
        return "", segments[1], segments[2:]
    if len(segments) >= 4 and segments[0] == "apis":
        return segments[1], segments[2], segments[3:]
    return None


def resolve(path: str) -> ResourcePath | None:
    parsed = parse_resource_path(path)
    if parsed is None:
        return None
    group, version, rest = parsed
    namespace = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource_type = find_type(group, version, rest[0])
    if resource_type is None or len(rest) > 3:
        raise errors.unknown_resource()
    if resource_type.namespaced != (namespace is not None) and len(rest) > 1:
        raise errors.unknown_resource()  # e.g. a namespaced kind addressed by name without a namespace
    return ResourcePath(
        resource_type, namespace, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None
    )


def rbac_verb(method: str, target: ResourcePath, query: dict[str, str]) -> str:
    if method == "GET":
        if query.get("watch") in ("true", "1"):
            return "watch"
        return "get" if target.name else "list"
    verbs = {
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if target.name else "deletecollection",
    }
    return verbs.get(method, method.lower())


def _content_type(request: kmock.Request) -> str:
    for header, value in request.headers.items():
        if header.lower() == "content-type":
            return value
    return ""


def _require_json(request: kmock.Request, resource_type: ResourceType) -> None:
    """POST and PUT bodies are JSON; no content type counts as JSON, as in the real API server."""
    media = _content_type(request).split(";")[0].strip().lower()
    if media not in ("", "application/json"):
        raise errors.unsupported_media_type(media, ["application/json", "application/yaml"])


def _bearer(request: kmock.Request) -> str:
    for header, value in request.headers.items():
        if header.lower() == "authorization" and value.lower().startswith("bearer "):
            return value[len("bearer ") :].strip()
    return ""


def _json_response(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> aiohttp.web.Response:
    return aiohttp.web.json_response(body, status=status, headers=headers)


@attrs.define(kw_only=True)
class FakeKubeEmulator(kmock.KubernetesEmulator):
    controls: Controls = attrs.field(factory=lambda: Controls(None))
    store: ObjectStore = attrs.field(init=False)
    loop: asyncio.AbstractEventLoop | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for resource_type in RESOURCE_TYPES:
            key = kmock.resource(group=resource_type.group, version=resource_type.version, plural=resource_type.plural)
            self.resources[key] = kmock.ResourceInfo(
                kind=resource_type.kind,
                namespaced=resource_type.namespaced,
                singular=resource_type.kind.lower(),
                verbs=set(VERBS),
                subresources=set(resource_type.subresources),
            )
        self.store = ObjectStore(self.objects, self._publish)

    def _publish(self, resource_type: ResourceType, event: str, obj: dict[str, Any]) -> None:
        """Feed kmock's watch streams; callable from any thread."""
        if self.loop is None or self.loop.is_closed():
            return
        resource = ObjectStore.key(resource_type, None, "")[0]
        message = {"type": event, "object": json.loads(json.dumps(obj))}
        self.loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._buses[resource].put(message)))

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        verb: str | None = None
        try:
            target = resolve(request.url.path)
            verb = rbac_verb(str(request.method.value).upper(), target, dict(request.params)) if target else None
            response = self._injected(request) or await self._serve(request, target, verb)
        except errors.ApiError as exc:
            response = _json_response(exc.status(), exc.code)
        self.controls.log.append(
            LoggedRequest(
                method=str(request.method.value).upper(),
                path=request.url.path,
                query=request.url.query_string,
                content_type=_content_type(request),
                status=response.status,
                verb=verb,
                token=_bearer(request),
            )
        )
        return response

    def _injected(self, request: kmock.Request) -> aiohttp.web.StreamResponse | None:
        method, path = str(request.method.value).upper(), request.url.path
        for hook in list(self.controls.hooks):
            if hook.remaining > 0 and hook.method.upper() == method and hook.path_contains in path:
                hook.remaining -= 1
                hook.action()
        for fault in self.controls.faults:
            if fault.remaining > 0 and fault.method.upper() == method and fault.path_contains in path:
                fault.remaining -= 1
                error = errors.ApiError(fault.status, fault.message)
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
                return _json_response(error.status(), fault.status, headers)
        return None

    async def _serve(
        self, request: kmock.Request, target: ResourcePath | None, verb: str | None
    ) -> aiohttp.web.StreamResponse:
        if target is None or verb is None:
            return await apps.RawHandler._handle(self, request)  # discovery, served by kmock's scaffold
        resource_type = target.resource_type
        authorizer = self.controls.authorizer
        rbac_resource = f"{resource_type.plural}/{target.subresource}" if target.subresource else resource_type.plural
        if authorizer is not None and not authorizer.allows(verb, resource_type.group, rbac_resource):
            denial = authorizer.denial(verb, resource_type.group, rbac_resource, target.namespace)
            raise errors.forbidden(resource_type, target.name, denial)
        if verb == "watch":
            return await apps.RawHandler._handle(self, request)  # kmock streams the store's events
        body = self._body(request)
        store, namespace, name = self.store, target.namespace, target.name
        if verb == "list":
            params = request.params
            listed = store.list(
                resource_type, namespace, params.get("labelSelector", ""), params.get("fieldSelector", "")
            )
            return _json_response(listed, 200)
        if verb in ("create", "update"):
            _require_json(request, resource_type)
        if verb == "create" and target.subresource is None:
            return _json_response(store.create(resource_type, namespace, body), 201)
        if name is None:
            raise errors.ApiError(405, f"{verb} is not supported on a collection by this fake", "MethodNotAllowed")
        if verb == "get":
            return _json_response(store.get(resource_type, namespace, name, target.subresource), 200)
        if verb == "update":
            return _json_response(store.replace(resource_type, namespace, name, body, target.subresource), 200)
        if verb == "patch":
            patched = store.patch(resource_type, namespace, name, _content_type(request), body, target.subresource)
            return _json_response(patched, 200)
        if verb == "delete" and target.subresource is None:
            return _json_response(store.delete(resource_type, namespace, name, body), 200)
        raise errors.ApiError(405, f"{verb} is not supported by this fake", "MethodNotAllowed")

    @staticmethod
    def _body(request: kmock.Request) -> Any:
        if not request.body:
            return None
        try:
            return json.loads(request.body)
        except ValueError as exc:
            raise errors.ApiError(400, f"the body of the request is not JSON: {exc}") from exc
