"""How Go prints decoded JSON values, so messages read exactly as kube-apiserver's do.

Two renderings matter: `%v` (error texts such as `map[name:B]`) and `encoding/json`
(sorted keys, compact, `<`, `>` and `&` escaped, floats without a needless `.0`).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

_HTML_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_HTML_PATTERN = re.compile("[<>&\u2028\u2029]")


def _digits_and_point(value: float) -> tuple[str, int]:
    """The shortest decimal digits of `value` and where the decimal point goes."""
    _, digits, exponent = Decimal(repr(abs(value))).normalize().as_tuple()
    text = "".join(str(d) for d in digits)
    if text == "0":
        return "0", 1
    assert isinstance(exponent, int)
    return text, len(text) + exponent


def go_float_json(value: float) -> str:
    """encoding/json's float64: positional unless the magnitude is below 1e-6 or from 1e21."""
    if value == 0:
        return "-0" if repr(value).startswith("-") else "0"
    magnitude = abs(value)
    sign = "-" if value < 0 else ""
    digits, point = _digits_and_point(value)
    if magnitude < 1e-6 or magnitude >= 1e21:
        return sign + _exponent_form(digits, point, minimal_negative=True)
    return sign + _positional(digits, point)


def go_float_v(value: float) -> str:
    """fmt's %v of a float64 (strconv 'g', shortest): exponent from 1e+06 on."""
    if value == 0:
        return "-0" if repr(value).startswith("-") else "0"
    sign = "-" if value < 0 else ""
    digits, point = _digits_and_point(value)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        return sign + _exponent_form(digits, point, minimal_negative=False)
    return sign + _positional(digits, point)


def _positional(digits: str, point: int) -> str:
    if point <= 0:
        return "0." + "0" * -point + digits
    if point >= len(digits):
        return digits + "0" * (point - len(digits))
    return digits[:point] + "." + digits[point:]


def _exponent_form(digits: str, point: int, *, minimal_negative: bool) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    exponent = point - 1
    sign = "-" if exponent < 0 else "+"
    magnitude = str(abs(exponent))
    if len(magnitude) < 2 and not (minimal_negative and sign == "-"):
        magnitude = "0" + magnitude
    return f"{mantissa}e{sign}{magnitude}"


def go_json(value: Any) -> str:
    """Go's json.Marshal of an unstructured value: sorted keys, compact, HTML-escaped."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float_json(value)
    if isinstance(value, str):
        return _HTML_PATTERN.sub(
            lambda m: _HTML_ESCAPES[m.group(0)], json.dumps(value, ensure_ascii=False)
        )
    if isinstance(value, dict):
        return (
            "{" + ",".join(go_json(str(k)) + ":" + go_json(value[k]) for k in sorted(value)) + "}"
        )
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def go_quote(text: str) -> str:
    """fmt's %q of a string."""
    return json.dumps(text, ensure_ascii=False)


def go_v(value: Any) -> str:
    """fmt's %v of an unstructured value (maps print with sorted keys)."""
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return go_float_v(value)
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_v(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(go_v(item) for item in value) + "]"
    return str(value)


def go_type_name(value: Any) -> str:
    """reflect.TypeOf(v).String() for an unstructured value."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, list):
        return "[]interface {}"
    return type(value).__name__


def same_scalar(left: Any, right: Any) -> bool:
    """Go's `==` on two interface values holding decoded JSON scalars: the types must match."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if type(left) is not type(right):
        return False
    return bool(left == right)


def json_equal(left: Any, right: Any) -> bool:
    """Deep equality of decoded JSON, numbers compared by value but never equal to booleans."""
    if isinstance(left, dict):
        if not isinstance(right, dict) or len(left) != len(right):
            return False
        return all(k in right and json_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list):
        if not isinstance(right, list) or len(left) != len(right):
            return False
        return all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, (dict, list)) or isinstance(right, (dict, list)):
        return False
    return bool(left == right) and type(left) is type(right)
