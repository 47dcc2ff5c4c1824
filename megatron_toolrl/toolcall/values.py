"""One argument value against its accepted values, with BFCL's semantics (python language).

Our own implementation of the rules of `bfcl_eval/eval_checker/ast_eval/ast_checker.py`
(bfcl-eval 2026.3.23), kept in step with it by tests/integration/test_checker_vs_bfcl.py:

- Types come from the function doc's `type`; Python types are compared exactly (`type(v) is T`),
  so a bool is not an int and 5.0 is not an integer. An int is accepted for a float (converted),
  a tuple for a `tuple` (converted to a list). `any` means str, as in BFCL.
- "Variable" answers: when the accepted values' type (of the first one that is not `""`) differs
  from the doc's type, a value of the accepted values' type passes the type check, and the value is
  then compared as is, without string normalisation.
- `array`/`tuple` items are type-checked one level deep against `items.type` (an item also passes
  when its type is that of the accepted list's first item).
- Strings, and strings directly inside lists and dicts, are compared after `standardize_string`.
- A dict is compared key by key against each accepted dict (whose values are accepted-value lists);
  a key whose accepted values hold `""` may be left out. A list of dicts is compared position by
  position. Values nested deeper are compared with `==`.
- Everything else: `value in accepted` (Python `==`, so 1 == 1.0 == True).

Deviations, only where BFCL itself raises: a missing `items` means no item check, ground-truth
entries that are not lists/dicts where BFCL indexes into them count as non-matching, an int too large
for a float is a value error, a non-dict inside a list of dicts is a type error. We also read the
JSON-schema spellings `number`, `object` and `list`, which BFCL's python mapping lacks.
"""

from __future__ import annotations

import reprlib
from dataclasses import dataclass
from typing import Any

from megatron_toolrl.errors import DataError

# Schema type -> Python type, BFCL's python mapping plus JSON-schema spellings.
SCHEMA_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "number": float,
    "boolean": bool,
    "array": list,
    "list": list,
    "tuple": list,
    "dict": dict,
    "object": dict,
    "any": str,
}
_ITEM_CHECKED = frozenset({"array", "list", "tuple"})
_FLOATS = frozenset({"float", "number"})

# BFCL removes these characters before comparing strings (so "April 1, 2024" == "april 1 2024").
_STRIP_CHARS = str.maketrans("", "", " ,./-_*^")


@dataclass(frozen=True)
class Mismatch:
    """Why a value was not accepted."""

    error_type: str
    """BFCL's error type, e.g. `value_error:string`."""
    message: str


@dataclass(frozen=True)
class ParamType:
    """The checked type of one parameter, read from its JSON-schema entry in the function doc."""

    schema_type: str
    items_type: str | None

    @classmethod
    def from_schema(cls, function: str, param: str, schema: Any) -> ParamType:
        field = f"{function}.parameters.properties.{param}"
        if not isinstance(schema, dict) or "type" not in schema:
            raise DataError("parameter schema has no 'type'", field=field)
        schema_type = schema["type"]
        if not isinstance(schema_type, str) or schema_type not in SCHEMA_TYPES:
            raise DataError(f"unknown type {schema_type!r:.60}; known: {sorted(SCHEMA_TYPES)}", field=field + ".type")
        items_type = None
        if schema_type in _ITEM_CHECKED:
            items = schema.get("items")
            if isinstance(items, dict) and "type" in items:
                items_type = items["type"]
                if not isinstance(items_type, str) or items_type not in SCHEMA_TYPES:
                    raise DataError(f"unknown item type {items_type!r:.60}", field=field + ".items.type")
        return cls(schema_type=schema_type, items_type=items_type)


def standardize_string(text: str) -> str:
    """BFCL's normalisation: drop spaces and `,./-_*^`, lowercase, turn `'` into `"`."""
    return text.translate(_STRIP_CHARS).lower().replace("'", '"')


def check_argument(param: str, value: Any, accepted: list[Any], ptype: ParamType) -> Mismatch | None:
    """None when `value` is accepted for `param`, else the reason."""
    expected = SCHEMA_TYPES[ptype.schema_type]
    item_type = SCHEMA_TYPES[ptype.items_type] if ptype.items_type is not None else None
    # Possible answers went through JSON, where tuples become lists.
    if ptype.schema_type == "tuple" and type(value) is tuple:
        value = list(value)
    if ptype.schema_type in _FLOATS and type(value) is int:
        try:
            value = float(value)
        except OverflowError:
            return Mismatch("value_error:others", f"{param!r}: integer too large for a float")
    type_error, is_variable = _type_check(value, accepted, expected, item_type)
    if type_error is not None:
        got = f"{type(value).__name__} {_short(value)}"
        return Mismatch(type_error, f"{param!r}: expected type {ptype.schema_type}, got {got}")
    if not is_variable:
        if expected is dict:
            return _dict_value(param, value, accepted)
        if expected is list and item_type is dict:
            return _list_of_dicts(param, value, accepted)
        if expected is str:
            return _string_value(param, value, accepted)
        if expected is list:
            return _list_value(param, value, accepted)
    if value not in accepted:
        return Mismatch("value_error:others", f"{param!r}: {_short(value)} is not one of {_short(accepted)}")
    return None


def _answer_type(accepted: Any) -> type | None:
    """Type of the first accepted value that is not the optional marker `""`."""
    for option in accepted:
        if option != "":
            return type(option)
    return None


def _type_check(value: Any, accepted: list[Any], expected: type, item_type: type | None) -> tuple[str | None, bool]:
    """(error type or None, is_variable)."""
    hint = _answer_type(accepted)
    is_variable = hint is not None and hint is not expected
    if type(value) is expected:
        if item_type is None:
            return None, is_variable
        # The value passes when its items fit any accepted list (a non-list option, e.g. "", fits).
        for option in accepted:
            if type(option) is list and not all(_item_fits(item, option, item_type) for item in value):
                continue
            return None, is_variable
        return ("type_error:nested" if hint is expected else "type_error:simple"), is_variable
    if hint is not None and type(value) is hint:
        return None, True
    return "type_error:simple", is_variable


def _item_fits(item: Any, option: list[Any], item_type: type) -> bool:
    if type(item) is item_type:
        return True
    hint = _answer_type(option)
    return hint is not None and type(item) is hint


def _normalised(value: Any) -> Any:
    return standardize_string(value) if type(value) is str else value


def _string_value(param: str, value: str, accepted: list[Any]) -> Mismatch | None:
    if standardize_string(value) in [standardize_string(a) for a in accepted if type(a) is str]:
        return None
    return Mismatch("value_error:string", f"{param!r}: {_short(value)} is not one of {_short(accepted)} (normalised)")


def _list_value(param: str, value: list[Any], accepted: list[Any]) -> Mismatch | None:
    normalised = [_normalised(v) for v in value]
    for option in accepted:
        # A str option (the optional marker "" included) is a sequence of characters, as in BFCL.
        if isinstance(option, (list, str)) and normalised == [_normalised(v) for v in option]:
            return None
    return Mismatch("value_error:list/tuple", f"{param!r}: {_short(value)} is not one of {_short(accepted)}")


def _dict_value(param: str, value: Any, accepted: list[Any]) -> Mismatch | None:
    if not isinstance(value, dict):
        return Mismatch("type_error:nested", f"{param!r}: expected a dict, got {type(value).__name__}")
    failure = Mismatch("dict_checker:unclear", f"{param!r}: no accepted dict")
    for option in accepted:
        if option == "":
            continue
        if not isinstance(option, dict):
            failure = Mismatch("dict_checker:unclear", f"{param!r}: accepted value {_short(option)} is not a dict")
            continue
        failure = _dict_against(param, value, option)
        if failure is None:
            return None
    return failure


def _dict_against(param: str, value: dict[Any, Any], option: dict[str, Any]) -> Mismatch | None:
    found = None
    for key, item in value.items():
        if key not in option:
            found = Mismatch("value_error:dict_key", f"{param!r}: unexpected key {_short(key)}")
            break
        choices = option[key] if isinstance(option[key], list) else [option[key]]
        if _normalised(item) not in [_normalised(c) for c in choices]:
            found = Mismatch("value_error:dict_value",
                             f"{param!r}[{_short(key)}]: {_short(item)} is not one of {_short(choices)}")
            break
    # BFCL checks for missing keys even after a failure above; the later error type wins.
    for key, choices in option.items():
        if key not in value and "" not in (choices if isinstance(choices, list) else [choices]):
            return Mismatch("value_error:dict_key", f"{param!r}: missing key {key!r:.60}")
    return found


def _list_of_dicts(param: str, value: list[Any], accepted: list[Any]) -> Mismatch | None:
    failure = Mismatch("list_dict_checker:unclear", f"{param!r}: no accepted list of dicts")
    for option in accepted:
        # The optional marker "" has length 0: it accepts an empty list, as in BFCL.
        if not isinstance(option, (list, str)) or len(value) != len(option):
            failure = Mismatch("value_error:list_dict_count", f"{param!r}: wrong number of dicts in the list")
            continue
        for item, choice in zip(value, option, strict=True):
            failure = _dict_value(param, item, [choice])
            if failure is not None:
                break
        else:
            return None
    return failure


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 3, 60, 60, 6, 6


def _short(value: Any) -> str:
    """A bounded repr for messages: model values can be 64 KB strings or thousands of items."""
    return _SHORT.repr(value)
