"""Errors that name what was wrong and where: file, line, field."""

from __future__ import annotations

from pathlib import Path


class ToolRLError(Exception):
    """Base class of every error this package raises on bad input."""


class LocatedError(ToolRLError):
    """An error in a file: the message starts with `path:line: field:` when those are known."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None, field: str | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        elif line is not None:
            where = f"line {line}: "
        if field:
            where += f"field {field!r}: "
        super().__init__(where + message)


class DataError(LocatedError):
    """A malformed dataset row or tool schema."""


class ConfigError(LocatedError):
    """A malformed config: unknown key, wrong type, value out of range."""


class CheckpointError(LocatedError):
    """A missing, corrupt or mismatched checkpoint or HF weights directory."""


class ModelConfigError(ToolRLError):
    """An HF config this package cannot map onto megatron-core (unknown architecture, bad parallel layout)."""
