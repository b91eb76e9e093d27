"""The small part of Kubernetes JSONPath that CRDs use for printer columns and selectable
fields: `.spec.replicas`, `.spec.containers[0].image`, `.items[*].name`,
`.metadata.labels['app.kubernetes.io/name']`, `.status.conditions[?(@.type=="Ready")].status`.

Missing keys yield no result (client-go's `AllowMissingKeys(true)`), never an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_NAME = re.compile(r"(?:\\.|[^.\[\\])+")
_FILTER = re.compile(
    r"""^\?\(\s*@((?:\.(?:\\.|[^.\s=!<>)\\])+)*)\s*(?:(==|!=|<=|>=|<|>)\s*(.+?))?\s*\)$"""
)


class JSONPathError(ValueError):
    """The expression is not one this evaluator understands."""


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Index:
    index: int


@dataclass(frozen=True)
class _Wildcard:
    pass


@dataclass(frozen=True)
class _Filter:
    path: tuple[str, ...]
    operator: str  # "" tests that the path exists
    literal: Any


_Step = _Field | _Index | _Wildcard | _Filter


class JSONPath:
    """A parsed expression; `find(obj)` returns every value it selects, in order."""

    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.steps = _parse(expression)

    def find(self, obj: Any) -> list[Any]:
        values = [obj]
        for step in self.steps:
            values = [found for value in values for found in _apply(step, value)]
        return values

    def first(self, obj: Any) -> tuple[bool, Any]:
        """(found, value) of the first match."""
        found = self.find(obj)
        return (True, found[0]) if found else (False, None)


def _parse(expression: str) -> tuple[_Step, ...]:
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    steps: list[_Step] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == ".":
            if text.startswith("..", i):
                raise JSONPathError(f"recursive descent is not supported: {expression!r}")
            match = _NAME.match(text, i + 1)
            if match is None:
                if i + 1 == len(text):  # "." alone selects the object itself
                    break
                raise JSONPathError(f"invalid field name at {i + 1} in {expression!r}")
            name = re.sub(r"\\(.)", r"\1", match.group(0))
            steps.append(_Wildcard() if name == "*" else _Field(name))
            i = match.end()
        elif char == "[":
            end = _closing_bracket(text, i, expression)
            steps.append(_bracket(text[i + 1 : end].strip(), expression))
            i = end + 1
        else:
            raise JSONPathError(f"unexpected {char!r} at {i} in {expression!r}")
    return tuple(steps)


def _closing_bracket(text: str, start: int, expression: str) -> int:
    quote = ""
    depth = 0
    for i in range(start, len(text)):
        char = text[i]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth == 0 and char == "]":
                return i
    raise JSONPathError(f"unclosed bracket in {expression!r}")


def _bracket(inner: str, expression: str) -> _Step:
    if inner == "*":
        return _Wildcard()
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return _Field(inner[1:-1])
    if re.fullmatch(r"-?\d+", inner):
        return _Index(int(inner))
    match = _FILTER.match(inner)
    if match:
        path = tuple(
            re.sub(r"\\(.)", r"\1", part)
            for part in re.findall(r"\.((?:\\.|[^.\\])+)", match.group(1))
        )
        operator = match.group(2) or ""
        return _Filter(path, operator, _literal(match.group(3), expression) if operator else None)
    raise JSONPathError(f"unsupported selector [{inner}] in {expression!r}")


def _literal(text: str, expression: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return json.loads(text)
    except ValueError:
        raise JSONPathError(f"invalid literal {text!r} in {expression!r}") from None


def _apply(step: _Step, value: Any) -> list[Any]:
    if isinstance(step, _Field):
        if isinstance(value, dict) and step.name in value:
            return [value[step.name]]
        return []
    if isinstance(step, _Index):
        if isinstance(value, list) and -len(value) <= step.index < len(value):
            return [value[step.index]]
        return []
    if isinstance(step, _Wildcard):
        if isinstance(value, list):
            return list(value)
        if isinstance(value, dict):
            return [value[key] for key in sorted(value)]
        return []
    items = (
        value
        if isinstance(value, list)
        else list(value.values())
        if isinstance(value, dict)
        else []
    )
    return [item for item in items if _matches(step, item)]


def _matches(step: _Filter, item: Any) -> bool:
    current = item
    for name in step.path:
        if not isinstance(current, dict) or name not in current:
            return False
        current = current[name]
    if not step.operator:
        return True
    literal = step.literal
    if step.operator in ("==", "!="):
        equal = _comparable(current) == _comparable(literal)
        return equal if step.operator == "==" else not equal
    if not (_is_number(current) and _is_number(literal)):
        return False
    if step.operator == "<":
        return bool(current < literal)
    if step.operator == ">":
        return bool(current > literal)
    if step.operator == "<=":
        return bool(current <= literal)
    return bool(current >= literal)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparable(value: Any) -> Any:
    return float(value) if _is_number(value) else value


def text_of(value: Any) -> str:
    """How client-go's JSONPath prints one result: strings as they are, lists and maps as
    compact JSON, numbers and booleans as Go prints them."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _go_float(value: float) -> str:
    """fmt's %v of a float64 (strconv 'g', shortest): exponent form below 1e-4 and from 1e6."""
    if value != value or value in (float("inf"), float("-inf")):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(value)]
    digits_tuple = Decimal(repr(value)).as_tuple()
    digits = "".join(str(d) for d in digits_tuple.digits).rstrip("0") or "0"
    assert isinstance(digits_tuple.exponent, int)
    exponent = len(digits_tuple.digits) + digits_tuple.exponent - 1
    sign = "-" if digits_tuple.sign else ""
    if exponent < -4 or exponent >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    text = format(abs(value), "f").rstrip("0").rstrip(".")
    return sign + text
