"""The base of every settings group: frozen, and unknown keys are errors."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
