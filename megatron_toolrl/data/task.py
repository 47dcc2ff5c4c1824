"""The records every other module passes around: a tool-calling task and the calls in it.

A `ToolTask` is one prompt of a tool-calling dataset: the conversation so far, the functions the
model may call (JSON-schema, BFCL's function-doc layout), and the ground truth in BFCL's
"possible answer" form, where every argument lists the values that are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Category = Literal["single", "multiple", "parallel", "parallel_multiple", "irrelevance"]
"""BFCL's AST categories. `single` is BFCL's `simple_*`: exactly one call of the only tool.
`multiple`: one call, the right tool chosen among several. `parallel`: several calls of one tool,
order-insensitive. `parallel_multiple`: several calls of several tools. `irrelevance`: no tool
fits, and the correct answer is to call none."""

CATEGORIES: tuple[str, ...] = get_args(Category)


@dataclass(frozen=True)
class ToolCall:
    """A call as decoded from model text or written as a demonstration answer."""

    name: str
    arguments: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class GroundTruthCall:
    """One expected call in BFCL's possible-answer semantics.

    `arguments[param]` is the list of accepted values for that parameter. An empty string `""` in
    the list means the parameter is optional (omitting it is also correct). Values that are dicts
    hold, per key, their own list of accepted values (BFCL's nested possible answers).
    """

    name: str
    arguments: dict[str, list[Any]]

    def to_bfcl(self) -> dict[str, dict[str, list[Any]]]:
        """The `{"name": {"param": [allowed, ...]}}` entry of BFCL's `ground_truth` list."""
        return {self.name: self.arguments}

    @classmethod
    def from_bfcl(cls, entry: dict[str, dict[str, list[Any]]]) -> "GroundTruthCall":
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(f"a BFCL ground-truth entry has exactly one function name, got {entry!r:.200}")
        (name, arguments), = entry.items()
        if not isinstance(arguments, dict):
            raise ValueError(f"ground truth of {name!r}: arguments must be an object, got {type(arguments).__name__}")
        return cls(name=name, arguments=arguments)

    def canonical_call(self) -> ToolCall:
        """The first accepted value of every argument, optional ones left out: a correct answer."""
        return ToolCall(self.name, {k: _first_accepted(v) for k, v in self.arguments.items() if _first_accepted(v) is not _OMIT})


_OMIT = object()


def _first_accepted(options: Any) -> Any:
    if isinstance(options, list):
        for value in options:
            if value != "":
                return _canonical_value(value)
        return _OMIT
    return _canonical_value(options)


def _canonical_value(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            first = _first_accepted(v)
            if first is not _OMIT:
                out[k] = first
        return out
    if isinstance(value, list):
        return [_canonical_value(v) for v in value]
    return value


@dataclass
class ToolTask:
    """One tool-calling prompt with its tools and its ground truth.

    `messages` are chat turns (`{"role": ..., "content": ...}`, OpenAI style, assistant turns may
    carry `tool_calls`); the last one is the user turn the model answers. `tools` are function docs
    `{"name", "description", "parameters": {"type": "dict"|"object", "properties", "required"}}`.
    `ground_truth` is empty for `irrelevance`. `domain` groups tasks for few-shot selection;
    `source` names the dataset (and file) the record came from.
    """

    id: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    ground_truth: list[GroundTruthCall]
    category: Category
    domain: str = ""
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"task {self.id!r}: category {self.category!r} is not one of {CATEGORIES}")
        if self.category == "irrelevance" and self.ground_truth:
            raise ValueError(f"task {self.id!r}: an irrelevance task has no ground-truth calls")
        if self.category != "irrelevance" and not self.ground_truth:
            raise ValueError(f"task {self.id!r}: category {self.category!r} needs at least one ground-truth call")

    @property
    def tool_names(self) -> list[str]:
        return [t["name"] for t in self.tools]

    def reference_answer(self) -> list[ToolCall]:
        """A correct answer built from the ground truth (for demonstrations and SFT targets)."""
        return [gt.canonical_call() for gt in self.ground_truth]
