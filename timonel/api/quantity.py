"""resource.Quantity: parsing, comparison, arithmetic and canonical formatting.

A quantity is an exact decimal number with a suffix that says how to write it back:

    DecimalSI        "500m", "1", "2k", "3M"      (powers of 1000)
    BinarySI         "1Ki", "1536Mi", "2Gi"       (powers of 1024)
    DecimalExponent  "1e3", "12e6"

Values are kept exactly as integer nano-units (every parsed value is rounded up, away
from zero, to a multiple of 10^-9, as apimachinery does), so no float ever enters.

Canonical form follows apimachinery's `Quantity.String()`:
- the largest suffix of the remembered format that keeps the mantissa an integer
  ("0.5" → "500m", "1000m" → "1", "1.5Gi" → "1536Mi");
- BinarySI values below 1024 in magnitude, or not whole, are written as DecimalSI
  ("0.5Ki" → "512");
- a string that is already in canonical shape is kept verbatim, as apimachinery caches
  it while parsing ("1Gi", "100m", "1e3").
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import Enum
from typing import Any

_SPLIT_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
_NANOS_PER_UNIT = 10**9
_INT64_MAX = 2**63 - 1


class QuantityError(ValueError):
    """A string that is not a quantity; the message is apimachinery's."""


FORMAT_WRONG = "quantities must match the regular expression '" + _SPLIT_REGEX + "'"
NUMERIC_WRONG = "unable to parse numeric part of quantity"
SUFFIX_WRONG = "unable to parse quantity's suffix"


class Format(Enum):
    DECIMAL_SI = "DecimalSI"
    BINARY_SI = "BinarySI"
    DECIMAL_EXPONENT = "DecimalExponent"


_DECIMAL_SUFFIXES: dict[str, int] = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BINARY_SUFFIXES: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXPONENT = {exponent: suffix for suffix, exponent in _BINARY_SUFFIXES.items()}
_SUFFIX_CHARS = frozenset("eEinumkKMGTP")
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, eq=False)
class Quantity:
    """An exact quantity: `nanos` is the value times 10^9."""

    nanos: int
    format: Format = Format.DECIMAL_SI
    # The text it was parsed from, when that text is what apimachinery keeps verbatim.
    text: str | None = None

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_int(cls, value: int, format: Format = Format.DECIMAL_SI) -> Quantity:
        return cls(value * _NANOS_PER_UNIT, format)

    @classmethod
    def from_milli(cls, value: int, format: Format = Format.DECIMAL_SI) -> Quantity:
        return cls(value * (_NANOS_PER_UNIT // 1000), format)

    # -- reading ----------------------------------------------------------------------

    def is_zero(self) -> bool:
        return self.nanos == 0

    def sign(self) -> int:
        return (self.nanos > 0) - (self.nanos < 0)

    def value(self) -> int:
        """The value rounded up (away from zero) to a whole number: Quantity.Value()."""
        return _divide_away_from_zero(self.nanos, _NANOS_PER_UNIT)

    def milli_value(self) -> int:
        """The value in thousandths, rounded up (away from zero): Quantity.MilliValue()."""
        return _divide_away_from_zero(self.nanos, _NANOS_PER_UNIT // 1000)

    def as_float(self) -> float:
        return self.nanos / _NANOS_PER_UNIT

    # -- arithmetic (results drop the remembered text, as apimachinery does) ----------

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.nanos + other.nanos, other.format if self.nanos == 0 else self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.nanos - other.nanos, other.format if self.nanos == 0 else self.format)

    def __neg__(self) -> Quantity:
        return Quantity(-self.nanos, self.format)

    def __mul__(self, factor: int) -> Quantity:
        return Quantity(self.nanos * factor, self.format)

    __rmul__ = __mul__

    def cmp(self, other: Quantity) -> int:
        return (self.nanos > other.nanos) - (self.nanos < other.nanos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantity) and self.nanos == other.nanos

    def __hash__(self) -> int:
        return hash(self.nanos)

    def __lt__(self, other: Quantity) -> bool:
        return self.nanos < other.nanos

    def __le__(self, other: Quantity) -> bool:
        return self.nanos <= other.nanos

    def __gt__(self, other: Quantity) -> bool:
        return self.nanos > other.nanos

    def __ge__(self, other: Quantity) -> bool:
        return self.nanos >= other.nanos

    def round_up(self, exponent: int) -> Quantity:
        """Round away from zero to a multiple of 10^exponent (exponent >= -9): RoundUp."""
        step = 10 ** (exponent + 9)
        rounded = _divide_away_from_zero(self.nanos, step) * step
        if rounded == self.nanos:
            return self
        return Quantity(rounded, self.format)

    # -- writing ----------------------------------------------------------------------

    def __str__(self) -> str:
        return self.text if self.text is not None else _canonical(self.nanos, self.format)

    def __repr__(self) -> str:
        return f"Quantity({str(self)!r})"


def _divide_away_from_zero(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def _split(text: str) -> tuple[bool, str, str, str, str]:
    """Scan `text` as apimachinery's parseQuantityString: (positive, value, num, denom, suffix)."""
    positive = True
    pos = 0
    end = len(text)
    if pos < end and text[0] in "+-":
        positive = text[0] == "+"
        pos += 1
    while pos < end and text[pos] == "0":
        pos += 1
    if pos >= end:
        return positive, "0", "0", "", ""
    start = pos
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    num = text[start:pos] or "0"
    if pos >= end:
        return positive, text, num, "", ""
    denom = ""
    if text[pos] == ".":
        pos += 1
        start = pos
        while pos < end and text[pos] in _DIGITS:
            pos += 1
        denom = text[start:pos]
        if pos >= end:
            return positive, text, num, denom, ""
    value = text[:pos]
    suffix_start = pos
    while pos < end and text[pos] in _SUFFIX_CHARS:
        pos += 1
    if pos < end and text[pos] in "+-":
        pos += 1
    while pos < end and text[pos] in _DIGITS:
        pos += 1
    if pos < end:
        raise QuantityError(FORMAT_WRONG)
    return positive, value, num, denom, text[suffix_start:]


def _interpret_suffix(suffix: str) -> tuple[int, int, Format]:
    """(base, exponent, format) of a suffix."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], Format.DECIMAL_SI
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], Format.BINARY_SI
    if len(suffix) > 1 and suffix[0] in "eE":
        exponent_text = suffix[1:]
        body = exponent_text[1:] if exponent_text[0] in "+-" else exponent_text
        if body and all(c in _DIGITS for c in body):
            return 10, int(exponent_text), Format.DECIMAL_EXPONENT
    raise QuantityError(SUFFIX_WRONG)


# The same few strings ("100m", "500Mi") come back on every pod, and a Quantity is
# immutable, so one parse serves them all (errors are not remembered).
_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=_CACHE_SIZE)
def parse_quantity(text: str) -> Quantity:
    """ParseQuantity: the quantity `text` denotes, or QuantityError."""
    return _parse_uncached(text)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _canonical_milli(text: str) -> str:
    return str(parse_quantity(text).round_up(-3))


def _parse_uncached(text: str) -> Quantity:
    if not text:
        raise QuantityError(FORMAT_WRONG)
    if text == "0":
        return Quantity(0, Format.DECIMAL_SI, "0")
    positive, value_text, num, denom, suffix = _split(text)
    base, exponent, format = _interpret_suffix(suffix)

    # apimachinery keeps small values as a scaled int64 and remembers the input text when
    # it is already canonical; larger or finer values go through an arbitrary-precision
    # path that rounds up to nano units and caps BinarySI at the int64 maximum.
    if format is Format.BINARY_SI:
        fast = exponent >= 0 and not denom
        precision = 15 - len(num) - int(exponent * 3 / 10) - 1 if fast else -1
    else:
        precision = 18 - (len(num) + len(denom))
    scale = (exponent if format is not Format.BINARY_SI else 0) - len(denom)
    if precision >= 0 and scale >= -9:
        digits = int(num + denom)
        multiplier = 1 << exponent if format is Format.BINARY_SI else 1
        magnitude = digits * multiplier
        if magnitude <= _INT64_MAX:
            nanos = magnitude * 10 ** (scale + 9)
            if not positive:
                nanos = -nanos
            shifted = num + denom
            if format is Format.BINARY_SI:
                verbatim = exponent % 10 == 0 and digits & 0x07 != 0
            else:
                verbatim = scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
            return Quantity(nanos, format, text if verbatim else None)

    if not any(c in _DIGITS for c in value_text):
        raise QuantityError(NUMERIC_WRONG)
    digits = int(num + denom) if (num + denom) else 0
    # exact value = digits * 10^-len(denom) * base^exponent, in nanos rounded away from zero
    numerator = digits * _NANOS_PER_UNIT
    denominator = 10 ** len(denom)
    if base == 10:
        if exponent >= 0:
            numerator *= 10**exponent
        else:
            denominator *= 10**-exponent
    else:
        numerator <<= exponent
    nanos = _divide_away_from_zero(numerator, denominator)
    if format is Format.BINARY_SI:
        nanos = min(nanos, _INT64_MAX * _NANOS_PER_UNIT)
        if 0 < nanos < _NANOS_PER_UNIT:
            format = Format.DECIMAL_SI
    return Quantity(nanos if positive else -nanos, format)


def parse_quantity_value(value: Any) -> Quantity:
    """A quantity from a decoded JSON value: a string, or a number written without quotes."""
    if isinstance(value, str):
        return parse_quantity(value.strip())
    if isinstance(value, bool):
        raise QuantityError(FORMAT_WRONG)
    if isinstance(value, int):
        return parse_quantity(str(value))
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e18:
            return parse_quantity(str(int(value)))
        return parse_quantity(repr(value).replace("e+", "e"))
    raise QuantityError(FORMAT_WRONG)


def canonical_quantity(value: Any) -> str:
    """The string kube-apiserver stores for `value` (QuantityError when not a quantity)."""
    return str(parse_quantity_value(value))


def _canonical(nanos: int, format: Format) -> str:
    if nanos == 0:
        return "0"
    if format is Format.BINARY_SI:
        if -1024 * _NANOS_PER_UNIT < nanos < 1024 * _NANOS_PER_UNIT or nanos % _NANOS_PER_UNIT:
            format = Format.DECIMAL_SI
        else:
            mantissa = nanos // _NANOS_PER_UNIT
            power = 0
            while abs(mantissa) >= 1024 and mantissa % 1024 == 0:
                mantissa //= 1024
                power += 10
            return f"{mantissa}{_BINARY_BY_EXPONENT.get(power, '')}"
    mantissa, exponent = nanos, -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    remainder = exponent % 3
    if remainder:
        mantissa *= 10**remainder
        exponent -= remainder
    if format is Format.DECIMAL_EXPONENT:
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    # Beyond "E" apimachinery has no suffix and writes the bare mantissa.
    return f"{mantissa}{_DECIMAL_BY_EXPONENT.get(exponent, '')}"


def canonical_resource_list(resources: Any) -> tuple[dict[str, Any], list[tuple[str, Any, str]]]:
    """A ResourceList as kube-apiserver stores it: each value canonical and rounded up
    to thousandths (SetDefaults_ResourceList). Returns the new map and the
    (name, value, error) of entries that are not quantities, which are kept as given."""
    result: dict[str, Any] = {}
    bad: list[tuple[str, Any, str]] = []
    if not isinstance(resources, dict):
        return result, bad
    for name, raw in resources.items():
        try:
            if isinstance(raw, str):
                result[name] = _canonical_milli(raw)
            else:
                result[name] = str(parse_quantity_value(raw).round_up(-3))
        except QuantityError as error:
            result[name] = raw
            bad.append((name, raw, str(error)))
    return result, bad
