"""Dependencies: the service built in the lifespan (reached through its facade), the caller, shared parameters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator

from api.schemas import ErrorOut
from api.security import Caller, TokenBook, TokenError
from intelligence.runtime.facade import ServiceFacade


def get_service(request: Request) -> ServiceFacade:
    service: ServiceFacade = request.app.state.service
    return service


ServiceDep = Annotated[ServiceFacade, Depends(get_service)]

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token of api.token_file or api.tokens_dir; the caller is the token file's name",
)


def require_caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Caller:
    """The caller named by ``Authorization: Bearer <token>`` (401 without or with a wrong one; 403: no tokens)."""
    found = request.scope.get("state", {}).get("caller")  # checked before the body was read (api.middleware)
    if isinstance(found, Caller):
        return found
    book: TokenBook = request.app.state.tokens
    try:
        return book.identify(request.headers.get("authorization"))
    except TokenError as exc:
        raise HTTPException(exc.status, exc.message, headers=exc.headers) from exc


CallerDep = Annotated[Caller, Depends(require_caller)]

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "The body cannot be read (not UTF-8 JSON, or a bad Content-Length)"},
    401: {"model": ErrorOut, "description": "No bearer token, not of the form 'Bearer <token>', or a wrong one"},
    403: {"model": ErrorOut, "description": "Mutating endpoints are disabled: no token file is configured"},
    413: {"model": ErrorOut, "description": "The request body is over api.max_body_bytes"},
    503: {"model": ErrorOut, "description": "The token files cannot be read"},
}

# -- parameters every list shares --------------------------------------------------------------------

MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)
MAX_ID = 2**31 - 1  # ids are 32-bit in PostgreSQL


def _utc(value: datetime) -> datetime:
    """A time without a zone is UTC; outside 1970..2200 it is refused (422)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        inside = MIN_TIME <= value <= MAX_TIME
    except OverflowError:
        inside = False
    if not inside:
        raise ValueError("out of range: times are between 1970-01-01 and 2200-01-01 (UTC)")
    return value.astimezone(UTC)


UtcTime = Annotated[datetime, AfterValidator(_utc)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Items to skip (see the Link header's next page)")]
_TEXT = r"^[^\x00-\x1F\x7F]*$"
Name = Annotated[str | None, Query(max_length=253, pattern=_TEXT)]
