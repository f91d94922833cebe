"""What every command shares: failing with a message, loading settings, logging."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from intelligence.settings import Settings


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def load(config: Path | None, **overrides: object) -> Settings:
    from intelligence.settings import ConfigError, load_settings

    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


class RedactingFilter(logging.Filter):
    """The last guard: a URL with credentials in any log line (ours or a library's) is logged redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        from intelligence.vocabulary import redact_text

        message = record.getMessage()
        if "://" in message:
            record.msg, record.args = redact_text(message), None
        return True


def setup_logging(level: str) -> None:
    """Log lines to stderr, every one redacted; the access log (``icos.access``) at info, never with a token."""
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    for noisy in ("uvicorn.access", "alembic", "mlflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("icos.access").setLevel(logging.INFO)  # on, whatever the level: api.access_log turns it off
