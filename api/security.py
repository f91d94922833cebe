"""Who is calling: bearer tokens, one per caller, and the name each stands for.

``api.token_file`` holds one token, whose caller is named after the file (``/run/secrets/operator``
is ``operator``); ``api.tokens_dir`` holds one file per caller (a mounted Kubernetes Secret:
each key a file), the file's name being the caller's. Files are read at each check, so a
rotated or revoked token takes effect at once. The header must be ``Authorization: Bearer
<token>``: a bare token is refused. Who approved, rejected, switched or drained is this name,
never a field of the request body.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field
from pathlib import Path

_BEARER = re.compile(r"^Bearer +([A-Za-z0-9\-._~+/]+=*) *$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Caller:
    name: str


class TokenError(Exception):
    """The caller is not let in: ``status`` is 401 (no or wrong token), 403 (no tokens configured) or 503."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="icos-intelligence"'} if self.status == 401 else {}


@dataclass(frozen=True)
class TokenBook:
    token_file: Path | None = None
    tokens_dir: Path | None = None
    _names: tuple[str, ...] = field(default=(), init=False)

    @property
    def configured(self) -> bool:
        return self.token_file is not None or self.tokens_dir is not None

    def tokens(self) -> dict[str, str]:
        """caller name -> token; raises :class:`TokenError` (503) when a configured file cannot be read."""
        found: dict[str, str] = {}
        try:
            if self.token_file is not None:
                found[self.token_file.name] = self.token_file.read_text().strip()
            if self.tokens_dir is not None:
                for path in sorted(self.tokens_dir.iterdir()):
                    if not path.name.startswith(".") and path.is_file():  # a Secret volume's ..data links
                        found[path.name] = path.read_text().strip()
        except OSError as exc:
            raise TokenError(503, f"tokens cannot be read: {exc.strerror}") from exc
        return {name: token for name, token in found.items() if token}

    def identify(self, authorization: str | None) -> Caller:
        """The caller that ``Authorization: Bearer <token>`` names, or :class:`TokenError`."""
        if not self.configured:
            raise TokenError(403, "mutating endpoints are disabled: set api.token_file or api.tokens_dir")
        match = _BEARER.match(authorization or "")
        if match is None:
            why = "missing" if not authorization else "not of the form 'Bearer <token>'"
            raise TokenError(401, f"Authorization header {why}")
        given = match.group(1).encode()
        name = None
        for who, token in self.tokens().items():  # every token is compared: no early exit
            if hmac.compare_digest(given, token.encode()):
                name = who
        if name is None:
            raise TokenError(401, "wrong bearer token")
        return Caller(name)
