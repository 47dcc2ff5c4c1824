"""Building blocks of the synthetic task catalogue: functions, parameters and value draws.

A `Function` is a tool (name, description, parameters) plus query templates. A `Param` knows its
JSON-schema type and how to draw a value together with the text that states it in a query and
the list of values a checker should accept for that text. Ground truth is therefore derived from
what the query says, never the other way round.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

NO_DEFAULT = object()
"""Marker: an optional parameter without a default (when unstated, it must be left out)."""


@dataclass(frozen=True)
class Drawn:
    """A drawn value, the words that state it in a query, and the values accepted for those words."""

    value: Any
    text: str
    accepted: list[Any]
    """BFCL possible-answer list for this value (first entry = `value`)."""


Draw = Callable[[random.Random], Drawn]


@dataclass(frozen=True)
class Param:
    """One parameter of a synthetic tool."""

    name: str
    type: str
    """BFCL type: string, integer, float, boolean, array or dict (enums are strings with `enum`)."""
    description: str
    draw: Draw
    optional: bool = False
    default: Any = NO_DEFAULT
    """Default of an optional parameter (shown in the schema; accepted when the query is silent)."""
    clauses: tuple[str, ...] = ()
    """Sentences that state an optional value, with `{v}` for its text."""
    bool_clauses: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    """For optional booleans: (sentences meaning False, sentences meaning True)."""
    enum: tuple[str, ...] = ()
    items: dict[str, Any] | None = None
    """Schema of array items."""
    fields: tuple["Param", ...] = ()
    """Fields of a dict parameter (all required)."""

    def schema(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.enum:
            out["enum"] = list(self.enum)
        if self.items is not None:
            out["items"] = dict(self.items)
        if self.fields:
            out["properties"] = {f.name: f.schema() for f in self.fields}
            out["required"] = [f.name for f in self.fields]
        if self.optional and self.default is not NO_DEFAULT:
            out["default"] = self.default
        return out


@dataclass(frozen=True)
class Function:
    """A synthetic tool and the ways a user asks for it."""

    name: str
    domain: str
    description: str
    params: tuple[Param, ...]
    templates: tuple[str, ...]
    """Query sentences with `{param}` for every required parameter."""

    def tool(self) -> dict[str, Any]:
        """The function doc in BFCL layout."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "dict",
                "properties": {p.name: p.schema() for p in self.params},
                "required": [p.name for p in self.params if not p.optional],
            },
        }


# ---- value draws ---------------------------------------------------------------------------------


def choice(values: Sequence[Any]) -> Draw:
    """One of `values`, stated as written. An entry `(text, [variants])` also accepts the variants."""

    def draw(rng: random.Random) -> Drawn:
        entry = rng.choice(values)
        if isinstance(entry, tuple):
            text, variants = entry
            return Drawn(text, str(text), [text, *variants])
        return Drawn(entry, str(entry), [entry])

    return draw


def integer(low: int, high: int, fmt: str = "{}") -> Draw:
    """An integer in [low, high]; `fmt` places it in text (e.g. `"${}"`)."""

    def draw(rng: random.Random) -> Drawn:
        value = rng.randint(low, high)
        return Drawn(value, fmt.format(value), [value])

    return draw


def code(fmt: str, low: int, high: int) -> Draw:
    """A string identifier built from a number (`"ORD-{}"` -> "ORD-48213"), stated as written."""

    def draw(rng: random.Random) -> Drawn:
        value = fmt.format(rng.randint(low, high))
        return Drawn(value, value, [value])

    return draw


def number(low: float, high: float, decimals: int = 1, fmt: str = "{}") -> Draw:
    """A float in [low, high] rounded to `decimals`, written without trailing zeros."""

    def draw(rng: random.Random) -> Drawn:
        value = round(rng.uniform(low, high), decimals)
        text = str(int(value)) if float(value).is_integer() else f"{value:.{decimals}f}".rstrip("0").rstrip(".")
        return Drawn(float(value), fmt.format(text), [float(value)])

    return draw


def boolean(true_text: str, false_text: str) -> Draw:
    """A boolean stated by a word (`on`/`off`) in a required slot."""

    def draw(rng: random.Random) -> Drawn:
        value = rng.random() < 0.5
        return Drawn(value, true_text if value else false_text, [value])

    return draw


def sample_list(values: Sequence[Any], low: int, high: int, ordered: bool) -> Draw:
    """A list of `low`..`high` distinct values, stated as "a, b and c".

    When `ordered` is False the order carries no meaning (a set of tickers), so every order is
    accepted; lists are kept short (<= 3) so that this stays small.
    """

    def draw(rng: random.Random) -> Drawn:
        k = rng.randint(low, high)
        picked = rng.sample(list(values), k)
        text = join_words([str(v) for v in picked])
        accepted = [picked] if ordered else [list(p) for p in itertools.permutations(picked)]
        return Drawn(picked, text, accepted)

    return draw


def obj(fields: Sequence[Param], fmt: str) -> Draw:
    """A dict of its fields' draws, stated by `fmt` (`"{street}, {city} {postal_code}"`)."""

    def draw(rng: random.Random) -> Drawn:
        drawn = {f.name: f.draw(rng) for f in fields}
        value = {k: d.value for k, d in drawn.items()}
        text = fmt.format(**{k: d.text for k, d in drawn.items()})
        return Drawn(value, text, [{k: d.accepted for k, d in drawn.items()}])

    return draw


def obj_param(name: str, description: str, fields: Sequence[Param], fmt: str) -> Param:
    """A required dict parameter whose fields are all required, stated by `fmt`."""
    return Param(name, "dict", description, obj(fields, fmt), fields=tuple(fields))


def join_words(words: Sequence[str]) -> str:
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " and " + words[-1]


def req(name: str, type_: str, description: str, draw: Draw, **kw: Any) -> Param:
    """A required parameter."""
    return Param(name, type_, description, draw, **kw)


def opt(
    name: str,
    type_: str,
    description: str,
    draw: Draw,
    default: Any = NO_DEFAULT,
    clauses: Sequence[str] = (),
    **kw: Any,
) -> Param:
    """An optional parameter; `clauses` are the sentences that state it."""
    return Param(name, type_, description, draw, optional=True, default=default, clauses=tuple(clauses), **kw)


def enum_param(
    name: str,
    description: str,
    values: Sequence[str],
    optional: bool = False,
    default: Any = NO_DEFAULT,
    clauses: Sequence[str] = (),
) -> Param:
    """A string parameter restricted to `values`."""
    return Param(
        name,
        "string",
        description,
        choice(list(values)),
        optional=optional,
        default=default,
        clauses=tuple(clauses),
        enum=tuple(values),
    )


def flag(name: str, description: str, default: bool, when_false: Sequence[str], when_true: Sequence[str]) -> Param:
    """An optional boolean, stated by a sentence that means True or False."""
    return Param(
        name,
        "boolean",
        description,
        boolean("yes", "no"),
        optional=True,
        default=default,
        bool_clauses=(tuple(when_false), tuple(when_true)),
    )


@dataclass
class CallDraft:
    """One drawn call: the sentence asking for it and its ground truth (accepted values per param)."""

    function: Function
    sentence: str
    arguments: dict[str, list[Any]] = field(default_factory=dict)
    stated: dict[str, str] = field(default_factory=dict)
    """Text stating each argument that the sentence mentions."""
