"""IntOrString fields that hold a count or a percentage (maxSurge, maxUnavailable,
minAvailable): validation worded as apps validation words it, and the arithmetic that
controllers and the eviction path share.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, TypeGuard

from timonel.api.errors import FieldError, RawValue, invalid_value

_PERCENT = re.compile(r"^[0-9]+%$")
PERCENT_ERROR = (
    "a valid percent string must be a numeric string followed by an ending '%' "
    "(e.g. '1%',  or '93%')"
)
NONNEGATIVE_ERROR = "must be greater than or equal to 0"


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def go_int_or_string(value: Any) -> RawValue:
    """How apimachinery prints an intstr.IntOrString in a message (`%#v`)."""
    if isinstance(value, str):
        return RawValue(f"intstr.IntOrString{{Type:1, IntVal:0, StrVal:{json.dumps(value)}}}")
    number = value if is_int(value) else 0
    return RawValue(f'intstr.IntOrString{{Type:0, IntVal:{number}, StrVal:""}}')


def validate_nonnegative(value: Any, path: str) -> list[FieldError]:
    """ValidateNonnegativeField for an integer field (absent fields are not checked)."""
    if value is None:
        return []
    if not is_int(value):
        return [invalid_value(path, value, "must be an integer")]
    if value < 0:
        return [invalid_value(path, value, NONNEGATIVE_ERROR)]
    return []


def validate_positive_int_or_percent(value: Any, path: str) -> list[FieldError]:
    """ValidatePositiveIntOrPercent: a non-negative integer or an "N%" string."""
    if isinstance(value, str):
        if not _PERCENT.match(value):
            return [invalid_value(path, go_int_or_string(value), PERCENT_ERROR)]
        return []
    if is_int(value):
        if value < 0:
            return [invalid_value(path, value, NONNEGATIVE_ERROR)]
        return []
    return [invalid_value(path, value, "must be an integer or percentage (e.g '5%%')")]


def percent_value(value: Any) -> int | None:
    """The N of a valid "N%" string, None for anything else."""
    if isinstance(value, str) and _PERCENT.match(value):
        return int(value[:-1])
    return None


def int_or_percent_value(value: Any) -> int:
    """getIntOrPercentValue: the percentage number or the integer (0 when unusable)."""
    percent = percent_value(value)
    if percent is not None:
        return percent
    if is_int(value):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return 0
    return 0


def validate_not_more_than_100_percent(value: Any, path: str) -> list[FieldError]:
    percent = percent_value(value)
    if percent is None or percent <= 100:
        return []
    return [invalid_value(path, go_int_or_string(value), "must not be greater than 100%")]


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an integer as is, a percentage of `total`
    rounded up or down. Raises ValueError for anything else."""
    if is_int(value):
        return int(value)
    percent = percent_value(value)
    if percent is None:
        raise ValueError(f"invalid value for IntOrString: invalid value {value!r}")
    scaled = percent * total / 100
    return math.ceil(scaled) if round_up else math.floor(scaled)
