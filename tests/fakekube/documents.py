"""Pure functions over JSON documents: the patch formats and label selectors the API server understands."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonpatch
import jsonpointer

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


class PatchError(ValueError):
    """A patch that cannot be applied (failing ``test`` op, bad path): the API answers 422."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes a key, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: list[Any]) -> dict[str, Any]:
    """RFC 6902 through the ``jsonpatch`` package; any failure is the client's fault (422)."""
    try:
        result = jsonpatch.JsonPatch(operations).apply(target, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError) as exc:
        raise PatchError(str(exc) or type(exc).__name__) from exc
    if not isinstance(result, dict):
        raise PatchError("the patch replaced the whole object with a non-object")
    return result


_REQUIREMENT = re.compile(
    r"""^\s*(?:
        (?P<absent>!\s*(?P<akey>[^\s!=,()]+))
      | (?P<skey>[^\s!=,()]+)\s*(?P<setop>in|notin)\s*\((?P<values>[^)]*)\)
      | (?P<ekey>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=,()]*)
      | (?P<exists>[^\s!=,()]+)
    )\s*$""",
    re.VERBOSE,
)


def _split_requirements(selector: str) -> list[str]:
    """Split on the commas that are not inside ``in (...)`` value lists."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Kubernetes label selector syntax: ``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``.

    Raises ValueError on a malformed selector (the API answers 400).
    """
    for requirement in _split_requirements(selector):
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise ValueError(f"unable to parse requirement: {requirement.strip()!r}")
        if match["absent"]:
            ok = match["akey"] not in labels
        elif match["setop"]:
            values = {value.strip() for value in match["values"].split(",") if value.strip()}
            inside = labels.get(match["skey"]) in values
            ok = inside if match["setop"] == "in" else not inside
        elif match["op"]:
            equal = labels.get(match["ekey"]) == match["value"]
            ok = (match["ekey"] in labels and equal) if match["op"] != "!=" else not equal
        else:
            ok = match["exists"] in labels
        if not ok:
            return False
    return True
