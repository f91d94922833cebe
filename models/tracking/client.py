"""The MLflow client and the locks every part of tracking shares.

mlflow is imported here on first use, never at import time, and only from one thread
at a time. An embedded SQLite store gets one lock for every thread that writes to it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any

# An embedded SQLite store is created (and migrated) by its first client: the tracker's and the
# registry's threads take turns on it rather than race. A tracking server needs no such care.
_SQLITE_LOCK = threading.RLock()

_IMPORT_LOCK = threading.Lock()


def import_mlflow() -> None:
    """Import mlflow's parts once, from one thread at a time (concurrent first imports deadlock)."""
    with _IMPORT_LOCK:
        import mlflow.artifacts
        import mlflow.entities
        import mlflow.exceptions
        import mlflow.tracking  # noqa: F401


def store_lock(uri: str) -> contextlib.AbstractContextManager[Any]:
    """The lock to hold while writing to ``uri``: the shared one for a SQLite store, none for a server."""
    return _SQLITE_LOCK if uri.startswith("sqlite:") else contextlib.nullcontext()


def new_client(tracking_uri: str, *, registry_uri: str | None = None, timeout_seconds: float | None = None) -> Any:
    """An ``MlflowClient`` for ``tracking_uri`` (and ``registry_uri``, when given).

    With ``timeout_seconds``, HTTP calls to a server time out after that long and are not
    retried, unless the environment already says otherwise: a caller that must not hang
    on a dead server (the tracker's worker, the registry) passes it.
    """
    if timeout_seconds is not None:
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(int(max(1, timeout_seconds))))
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    import_mlflow()
    from mlflow.tracking import MlflowClient

    if registry_uri is None:
        return MlflowClient(tracking_uri=tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
