"""Dependencies: the service built in the lifespan, reached through its facade."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request, status

from intelligence.runtime.facade import ServiceFacade


def get_service(request: Request) -> ServiceFacade:
    service: ServiceFacade = request.app.state.service
    return service


ServiceDep = Annotated[ServiceFacade, Depends(get_service)]


def require_token(
    service: ServiceDep, authorization: Annotated[str | None, Header(description="Bearer token")] = None
) -> None:
    """The mutating endpoints need ``Authorization: Bearer <token>``, the token read from ``api.token_file``."""
    path = service.token_file
    if path is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "mutating endpoints are disabled: set api.token_file")
    try:
        expected = path.read_text().strip()
    except OSError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"api.token_file {path}: {exc.strerror}") from exc
    given = (authorization or "").removeprefix("Bearer ").strip()
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
        )


Authenticated = Depends(require_token)
