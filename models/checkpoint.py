"""Checkpoints of the model bank: atomic, versioned with the model kinds' params."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

FORMAT = 2  # 2: the bank's snapshot (per-series models and vectorised fleets)


class CheckpointError(Exception):
    """The checkpoint cannot be used (corrupt, or made by incompatible model kinds)."""


def dump(snapshot: dict[str, Any], signature: dict[str, Any]) -> bytes:
    """Serialise a bank snapshot; call from the engine thread, write from anywhere."""
    return pickle.dumps({"format": FORMAT, "signature": signature, "bank": snapshot}, protocol=pickle.HIGHEST_PROTOCOL)


def write_atomically(path: Path, payload: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, signature: dict[str, Any]) -> dict[Any, Any]:
    """Read a checkpoint written by :func:`dump`, refusing one of other model kinds or params."""
    try:
        data = pickle.loads(path.read_bytes())  # noqa: S301 - our own file in our state directory
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ModuleNotFoundError) as exc:
        raise CheckpointError(f"checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {path} has format {data.get('format') if isinstance(data, dict) else '?'}, expected {FORMAT}"
        )
    if data.get("signature") != signature:
        raise CheckpointError(
            f"checkpoint {path} was made by other model kinds or params "
            f"({data.get('signature')} != {signature}); move it away to start cold"
        )
    snapshot: dict[Any, Any] = data["bank"]
    return snapshot
