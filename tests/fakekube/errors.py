"""API errors as the real API server reports them: a ``Status`` object with reason, message and code."""

from __future__ import annotations

from typing import Any

from tests.fakekube.resources import ResourceType

REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """Raised inside the fake; the server turns it into the HTTP response."""

    def __init__(
        self, code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            status["details"] = self.details
        return status


def _details(resource_type: ResourceType, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"group": resource_type.group, "kind": resource_type.plural}
    if name:
        details["name"] = name
    return details


def not_found(resource_type: ResourceType, name: str) -> ApiError:
    return ApiError(404, f'{resource_type.qualified} "{name}" not found', details=_details(resource_type, name))


def already_exists(resource_type: ResourceType, name: str) -> ApiError:
    details = _details(resource_type, name)
    return ApiError(409, f'{resource_type.qualified} "{name}" already exists', "AlreadyExists", details)


def conflict(resource_type: ResourceType, name: str) -> ApiError:
    message = (
        f'Operation cannot be fulfilled on {resource_type.qualified} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )
    return ApiError(409, message, "Conflict", _details(resource_type, name))


def invalid(resource_type: ResourceType, name: str, cause: str) -> ApiError:
    kind = f"{resource_type.kind}.{resource_type.group}" if resource_type.group else resource_type.kind
    return ApiError(422, f'{kind} "{name}" is invalid: {cause}', "Invalid", {**_details(resource_type, name)})


def forbidden(resource_type: ResourceType, name: str | None, denial: str) -> ApiError:
    target = f'{resource_type.qualified} "{name}"' if name else resource_type.qualified
    return ApiError(403, f"{target} is forbidden: {denial}", "Forbidden", _details(resource_type, name))


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    message = (
        f"the body of the request was in an unknown format ({content_type or 'no content type'}) - "
        f"accepted media types include: {', '.join(accepted)}"
    )
    return ApiError(415, message, "UnsupportedMediaType")


def unknown_resource() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", "NotFound")
