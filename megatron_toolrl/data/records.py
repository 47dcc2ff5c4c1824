"""Reading dataset files row by row, with line numbers, and the report every loader returns.

Datasets come as JSON Lines (one record per line) or as one JSON document holding a list of
records (ToolACE and xLAM ship that way). Both are read here so that every error can name the
file and the 1-based line where the bad record starts. A converter that finds a bad field raises
`FieldError(field, reason)`; `load_records` turns it into a `DataError` naming file, line and
field, or, with `on_error="skip"`, records the row in the `LoadReport` and goes on. Nothing is
dropped silently.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

from megatron_toolrl.data.task import ToolTask
from megatron_toolrl.errors import DataError

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
"""What a loader does with a malformed row: stop with a `DataError` (default), or skip it and
list it in the `LoadReport`."""

MAX_RECORD_CHARS = 4_000_000
"""Longest JSON Lines line read (characters). Real tool-calling records are a few KB; a longer
line is almost certainly a broken file, reported instead of parsed."""


class FieldError(Exception):
    """A bad field inside one record. `field` is a path such as `tools[2].parameters`."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class SkippedRow:
    """One row a loader skipped under `on_error="skip"`, and why."""

    path: str
    line: int
    """1-based line where the record starts."""
    field: str | None
    """Path of the bad field inside the record; None when the row is not valid JSON."""
    reason: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}: "
        if self.field:
            where += f"field {self.field!r}: "
        return where + self.reason


@dataclass
class LoadReport:
    """Counts of one load. One record may give several tasks (one per assistant call turn in a
    ToolACE or API-Bank dialogue), so `loaded` counts tasks and `read`/`skipped` count records."""

    source: str
    """Dataset tag (`xlam`, `toolace`, `bfcl_v4:simple_python`, ...)."""
    paths: list[str] = field(default_factory=list)
    read: int = 0
    """Records read (valid or not)."""
    loaded: int = 0
    """Tasks produced."""
    skipped: int = 0
    """Records skipped under `on_error="skip"`; each is listed in `skipped_rows`."""
    skipped_rows: list[SkippedRow] = field(default_factory=list)

    def skip(self, path: str, line: int, field_: str | None, reason: str) -> None:
        self.skipped += 1
        self.skipped_rows.append(SkippedRow(path, line, field_, reason))

    def merge(self, other: "LoadReport") -> "LoadReport":
        """A report covering both loads (for datasets read from several files)."""
        source = self.source if self.source == other.source else f"{self.source}+{other.source}"
        return LoadReport(
            source=source,
            paths=self.paths + other.paths,
            read=self.read + other.read,
            loaded=self.loaded + other.loaded,
            skipped=self.skipped + other.skipped,
            skipped_rows=self.skipped_rows + other.skipped_rows,
        )

    def log(self) -> None:
        logger.info(
            "%s (%s): read %d records, loaded %d tasks, skipped %d records",
            self.source,
            ", ".join(self.paths),
            self.read,
            self.loaded,
            self.skipped,
        )
        for row in self.skipped_rows:
            logger.warning("skipped %s", row)


def iter_records(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield `(line, record)` for every record of a JSON Lines file or a JSON list file.

    The format is told by the first non-blank character: `[` means one JSON list, anything else
    JSON Lines. A JSON list is decoded element by element so each record keeps the line it starts
    on. Blank lines of a JSON Lines file are ignored. A line that is not valid JSON yields
    `(line, BadJson(reason))`, so that the caller can skip it; a broken JSON list raises (no
    way to find where the next record starts).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text: {exc.reason} at byte {exc.start}", path=path) from exc
    stripped = text.lstrip()
    if stripped.startswith("["):
        yield from _iter_json_list(text, path)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_RECORD_CHARS:
            yield number, BadJson(f"line is {len(line)} characters long (limit {MAX_RECORD_CHARS})")
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, BadJson(f"not valid JSON: {exc.msg} (column {exc.colno})")


@dataclass(frozen=True)
class BadJson:
    """Marker for a JSON Lines row that did not decode."""

    reason: str


def _iter_json_list(text: str, path: Path) -> Iterator[tuple[int, Any]]:
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    length = len(text)

    def skip_ws(i: int) -> int:
        while i < length and text[i] in " \t\r\n":
            i += 1
        return i

    pos = skip_ws(pos)
    if pos < length and text[pos] == "]":
        return
    while True:
        line = text.count("\n", 0, pos) + 1
        try:
            record, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise DataError(f"not valid JSON: {exc.msg} (column {exc.colno})", path=path, line=exc.lineno) from exc
        yield line, record
        pos = skip_ws(end)
        if pos < length and text[pos] == ",":
            pos = skip_ws(pos + 1)
            continue
        if pos < length and text[pos] == "]":
            if skip_ws(pos + 1) != length:
                raise DataError(
                    "text after the closing ']' of the record list", path=path, line=text.count("\n", 0, pos) + 1
                )
            return
        raise DataError("expected ',' or ']' after a record", path=path, line=text.count("\n", 0, pos) + 1)


Converter = Callable[[Any, int], list[ToolTask]]
"""Turns one decoded record (and its 0-based index in the file) into tasks, or raises FieldError."""


def load_records(
    path: str | Path, source: str, convert: Converter, on_error: OnError = "raise"
) -> tuple[list[ToolTask], LoadReport]:
    """Run `convert` over every record of `path`; errors become DataError or skipped rows.

    Task ids must be unique within the file: a repeated id is an error of the later row.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    spath = str(path)
    report = LoadReport(source=source, paths=[spath])
    tasks: list[ToolTask] = []
    seen: dict[str, int] = {}
    for index, (line, record) in enumerate(iter_records(path)):
        report.read += 1
        try:
            if isinstance(record, BadJson):
                raise FieldError("", record.reason)
            if not isinstance(record, dict):
                raise FieldError("", f"a record must be a JSON object, got {type(record).__name__}")
            produced = convert(record, index)
            for task in produced:
                if task.id in seen:
                    raise FieldError("id", f"duplicate task id {task.id!r} (first at line {seen[task.id]})")
        except FieldError as exc:
            if on_error == "raise":
                raise DataError(exc.reason, path=spath, line=line, field=exc.field or None) from None
            report.skip(spath, line, exc.field or None, exc.reason)
            continue
        for task in produced:
            seen[task.id] = line
        tasks.extend(produced)
        report.loaded += len(produced)
    report.log()
    return tasks, report


def require(record: dict[str, Any], key: str, kind: type | tuple[type, ...], prefix: str = "") -> Any:
    """`record[key]` if present and of type `kind`, else FieldError naming `prefix + key`."""
    name = f"{prefix}{key}"
    if key not in record:
        raise FieldError(name, "missing")
    value = record[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise FieldError(name, f"expected {_kind_name(kind)}, got {_json_type(value)}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "a boolean",
    }
    if isinstance(kind, tuple):
        return " or ".join(names.get(k, k.__name__) for k in kind)
    return names.get(kind, kind.__name__)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
    }.get(type(value), type(value).__name__)


def json_type(value: Any) -> str:
    """A JSON-ish name of `value`'s type for error messages ("an object", "a string", "null")."""
    return _json_type(value)
