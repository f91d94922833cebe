"""The API semantics of the fake: object metadata, optimistic concurrency, subresources, patch kinds.

Objects live in kmock's ``ObjectsArray`` (so every version stays in ``history`` for assertions);
this module decides what a write does to them, as the real API server would.
"""

from __future__ import annotations

import copy
import random
import re
import string
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kmock

from tests.fakekube import errors
from tests.fakekube.documents import (
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    PatchError,
    json_patch,
    merge_patch,
    selector_matches,
)
from tests.fakekube.resources import ResourceType

JsonObject = dict[str, Any]
Notify = Callable[[ResourceType, str, JsonObject], None]

_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_IMMUTABLE_METADATA = ("name", "namespace", "uid", "creationTimestamp")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: JsonObject) -> JsonObject:
    """What counts for metadata.generation: everything but metadata and status."""
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


def _without_revision(obj: JsonObject) -> JsonObject:
    stripped = copy.deepcopy(obj)
    stripped.get("metadata", {}).pop("resourceVersion", None)
    return stripped


class ObjectStore:
    """Thread-safe: the server thread and the test thread (``seed``) both write."""

    def __init__(self, objects: kmock.ObjectsArray, notify: Notify | None = None) -> None:
        self._objects = objects
        self._notify = notify or (lambda resource_type, event, obj: None)
        self._lock = threading.RLock()
        self._revision = 0

    # -- addressing -------------------------------------------------------------------------------

    @staticmethod
    def key(resource_type: ResourceType, namespace: str | None, name: str) -> tuple[kmock.resource, str | None, str]:
        resource = kmock.resource(group=resource_type.group, version=resource_type.version, plural=resource_type.plural)
        return resource, namespace if resource_type.namespaced else None, name

    def _current(self, resource_type: ResourceType, namespace: str | None, name: str) -> JsonObject | None:
        key = self.key(resource_type, namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(dict(self._objects[key].last.raw))

    def _require(self, resource_type: ResourceType, namespace: str | None, name: str) -> JsonObject:
        current = self._current(resource_type, namespace, name)
        if current is None:
            raise errors.not_found(resource_type, name)
        return current

    def _next_revision(self) -> str:
        self._revision += 1
        return str(self._revision)

    # -- reads --------------------------------------------------------------------------------------

    def get(self, resource_type: ResourceType, namespace: str | None, name: str, subresource: str | None) -> JsonObject:
        with self._lock:
            return self._view(resource_type, self._require(resource_type, namespace, name), subresource)

    def list(
        self, resource_type: ResourceType, namespace: str | None, label_selector: str = "", field_selector: str = ""
    ) -> JsonObject:
        fields = dict(part.split("=", 1) for part in field_selector.replace("==", "=").split(",") if "=" in part)
        with self._lock:
            items = []
            for (resource, item_namespace, name), obj in self._objects.items():
                if obj.deleted or resource != self.key(resource_type, None, name)[0]:
                    continue
                if resource_type.namespaced and namespace is not None and item_namespace != namespace:
                    continue
                raw = copy.deepcopy(dict(obj.last.raw))
                try:
                    if label_selector and not selector_matches(label_selector, raw["metadata"].get("labels") or {}):
                        continue
                except ValueError as exc:
                    raise errors.ApiError(400, f"unable to parse requirement: {exc}") from exc
                meta_fields = {"metadata.name": name, "metadata.namespace": item_namespace}
                if any(meta_fields.get(field) != value for field, value in fields.items()):
                    continue
                items.append(raw)
            return {
                "apiVersion": resource_type.api_version,
                "kind": f"{resource_type.kind}List",
                "metadata": {"resourceVersion": str(self._revision)},
                "items": items,
            }

    # -- writes -------------------------------------------------------------------------------------

    def create(
        self, resource_type: ResourceType, namespace: str | None, body: Any, *, keep_status: bool = False
    ) -> JsonObject:
        """POST; ``keep_status`` is for seeding (the real API drops status on create when it is a subresource)."""
        if not isinstance(body, dict):
            raise errors.ApiError(400, "the body of the request is not a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        name = meta.get("name") or ""
        if not name:
            raise errors.invalid(resource_type, "", "metadata.name: Required value: name or generateName is required")
        if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
            raise errors.invalid(
                resource_type,
                name,
                f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        if resource_type.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise errors.ApiError(
                    400, "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        obj.setdefault("apiVersion", resource_type.api_version)
        obj.setdefault("kind", resource_type.kind)
        if "status" in resource_type.subresources and not keep_status:
            obj.pop("status", None)
        with self._lock:
            if self._current(resource_type, namespace, name) is not None:
                raise errors.already_exists(resource_type, name)
            meta.update(
                uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1, resourceVersion=self._next_revision()
            )
            for transient in ("deletionTimestamp", "selfLink"):
                meta.pop(transient, None)
            key = self.key(resource_type, namespace, name)
            if key in self._objects:
                self._objects[key].create(obj)  # re-created after a deletion: the history continues
            else:
                self._objects[key] = obj
            self._notify(resource_type, "ADDED", obj)
            return copy.deepcopy(obj)

    def replace(
        self, resource_type: ResourceType, namespace: str | None, name: str, body: Any, subresource: str | None
    ) -> JsonObject:
        """PUT: a stale ``metadata.resourceVersion`` is a 409; CRDs require one at all (built-ins do not)."""
        if not isinstance(body, dict):
            raise errors.ApiError(400, "the body of the request is not a JSON object")
        body_name = body.get("metadata", {}).get("name")
        if body_name not in (None, name):
            raise errors.ApiError(
                400, f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        if not body.get("metadata", {}).get("resourceVersion") and not resource_type.builtin:
            raise errors.invalid(
                resource_type, name, "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
            )
        return self._write(resource_type, namespace, name, subresource, lambda view: copy.deepcopy(body))

    def patch(
        self,
        resource_type: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        subresource: str | None,
    ) -> JsonObject:
        """PATCH, picking the patch kind by the declared content type and refusing a body of the other shape."""
        media = content_type.split(";")[0].strip().lower()
        accepted = [JSON_PATCH, MERGE_PATCH, "application/apply-patch+yaml"]
        if resource_type.builtin:
            # Strategic merge is approximated by a JSON merge: lists with a patchMergeKey (containers,
            # ports...) are replaced here where the real API merges them by key.
            accepted.append(STRATEGIC_MERGE_PATCH)
        if media in (MERGE_PATCH, STRATEGIC_MERGE_PATCH) and media in accepted and isinstance(patch, dict):
            return self._write(resource_type, namespace, name, subresource, lambda view: merge_patch(view, patch))
        if media == JSON_PATCH and isinstance(patch, list):

            def apply(view: JsonObject) -> JsonObject:
                try:
                    return json_patch(view, patch)
                except PatchError as exc:
                    raise errors.invalid(resource_type, name, f"the server rejected our request: {exc}") from exc

            return self._write(resource_type, namespace, name, subresource, apply)
        raise errors.unsupported_media_type(content_type, accepted)

    def delete(self, resource_type: ResourceType, namespace: str | None, name: str, options: Any = None) -> JsonObject:
        """DELETE: the object goes at once unless it has finalizers (then it only gets a deletionTimestamp)."""
        with self._lock:
            current = self._require(resource_type, namespace, name)
            preconditions = (options or {}).get("preconditions") or {} if isinstance(options, dict) else {}
            for field in ("resourceVersion", "uid"):
                if preconditions.get(field) and preconditions[field] != current["metadata"].get(field):
                    raise errors.conflict(resource_type, name)
            key = self.key(resource_type, namespace, name)
            if current["metadata"].get("finalizers"):
                if not current["metadata"].get("deletionTimestamp"):
                    current["metadata"]["deletionTimestamp"] = _now()
                    current["metadata"]["resourceVersion"] = self._next_revision()
                    self._objects[key].create(current)
                    self._notify(resource_type, "MODIFIED", current)
                return current
            self._objects[key].delete()
            self._notify(resource_type, "DELETED", current)
            return {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    "name": name,
                    "group": resource_type.group,
                    "kind": resource_type.plural,
                    "uid": current["metadata"]["uid"],
                },
            }

    # -- the common write path ------------------------------------------------------------------------

    def _write(
        self,
        resource_type: ResourceType,
        namespace: str | None,
        name: str,
        subresource: str | None,
        compute: Callable[[JsonObject], Any],
    ) -> JsonObject:
        if subresource is not None and subresource not in resource_type.subresources:
            raise errors.unknown_resource()
        with self._lock:
            current = self._require(resource_type, namespace, name)
            view = self._view(resource_type, current, subresource)
            new_view = compute(copy.deepcopy(view))
            if not isinstance(new_view, dict):
                raise errors.ApiError(400, "the patched object is not a JSON object")
            sent_revision = (new_view.get("metadata") or {}).get("resourceVersion")
            if sent_revision and sent_revision != view["metadata"]["resourceVersion"]:
                raise errors.conflict(resource_type, name)
            updated = self._merge_back(resource_type, current, new_view, subresource)
            return self._view(
                resource_type, self._commit(resource_type, namespace, name, current, updated), subresource
            )

    def _view(self, resource_type: ResourceType, obj: JsonObject, subresource: str | None) -> JsonObject:
        """What a client reads and writes at the (sub)resource path."""
        if subresource == "scale":
            meta = obj["metadata"]
            selector = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
            return {
                "apiVersion": "autoscaling/v1",
                "kind": "Scale",
                "metadata": {
                    key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                },
                "spec": {"replicas": obj.get("spec", {}).get("replicas", 1)},
                "status": {
                    "replicas": obj.get("status", {}).get("replicas", 0),
                    "selector": ",".join(f"{key}={value}" for key, value in sorted(selector.items())),
                },
            }
        if subresource not in (None, "status"):
            raise errors.unknown_resource()
        return copy.deepcopy(obj)

    def _merge_back(
        self, resource_type: ResourceType, current: JsonObject, new_view: JsonObject, subresource: str | None
    ) -> JsonObject:
        """Apply a written view to the stored object: /status writes only status, the main path all but status."""
        if subresource == "scale":
            replicas = (new_view.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise errors.invalid(
                    resource_type, current["metadata"]["name"], f"spec.replicas: Invalid value: {replicas!r}"
                )
            updated = copy.deepcopy(current)
            updated.setdefault("spec", {})["replicas"] = replicas
            return updated
        if subresource == "status":
            updated = copy.deepcopy(current)
            if "status" in new_view:
                updated["status"] = new_view["status"]
            else:
                updated.pop("status", None)
            return updated
        updated = copy.deepcopy(new_view)
        if "status" in resource_type.subresources:
            updated.pop("status", None)
            if "status" in current:
                updated["status"] = current["status"]
        return updated

    def _commit(
        self, resource_type: ResourceType, namespace: str | None, name: str, current: JsonObject, updated: JsonObject
    ) -> JsonObject:
        meta = updated.setdefault("metadata", {})
        for field in (*_IMMUTABLE_METADATA, "generation", "resourceVersion", "deletionTimestamp"):
            if field in current["metadata"]:
                meta[field] = current["metadata"][field]
            else:
                meta.pop(field, None)
        updated["apiVersion"], updated["kind"] = current.get("apiVersion"), current.get("kind")
        if _without_revision(updated) == _without_revision(current):
            return current  # a no-op write changes nothing, not even the resourceVersion
        if _spec_part(updated) != _spec_part(current):
            meta["generation"] = int(current["metadata"].get("generation", 1)) + 1
        meta["resourceVersion"] = self._next_revision()
        key = self.key(resource_type, namespace, name)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._objects[key].delete()
            self._notify(resource_type, "DELETED", updated)
        else:
            self._objects[key].create(updated)
            self._notify(resource_type, "MODIFIED", updated)
        return updated
