"""Configuration errors: one message per bad key, naming the key and its value."""

from __future__ import annotations

from typing import Any

from intelligence.vocabulary import redact_text


class ConfigError(Exception):
    """Invalid configuration; ``problems`` has one line per bad key, naming it and its value."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"invalid configuration in {source}:\n" + "\n".join(f"  - {p}" for p in problems))


def describe(error: Any) -> str:
    loc = ""
    for part in error.get("loc", ()):
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    loc = loc or "(top level)"
    msg = str(error.get("msg", "invalid"))
    if error.get("type") == "extra_forbidden":
        return f"{loc}: unknown key"
    if error.get("type") == "missing":
        return f"{loc}: required key is missing"
    value = error.get("input")
    shown = redact_text(repr(value)) if not isinstance(value, dict | list) else type(value).__name__
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"{loc}: {msg.removeprefix('Value error, ')} (got {shown})"
