"""Label and field selectors, parsed and matched as apimachinery does.

Label selectors (`?labelSelector=`, `metav1.LabelSelector` objects):

    <selector>    ::= <requirement> | <requirement> "," <selector>
    <requirement> ::= [!] KEY [ ("in" | "notin") "(" VALUES ")" | ("=" | "==" | "!=") VALUE
                                | (">" | "<") INTEGER ]

A bare KEY requires the label to exist, `!KEY` requires it to be absent. Requirements are
kept sorted by key, so `str()` gives the canonical form kube-apiserver prints.

Field selectors (`?fieldSelector=`) are a comma-joined list of `field=value`,
`field==value` or `field!=value`; values escape `\\`, `,` and `=` with a backslash. A
missing field reads as the empty string.

Parse failures raise `bad_request` with apimachinery's wording, which kubectl shows as is.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from functools import lru_cache
from typing import Any, Final

from timonel.api.errors import StatusError, bad_request
from timonel.api.validation import (
    label_value_problems,
    qualified_name_problems,
    validate_label_selector,
)

__all__ = [
    "EVERYTHING",
    "NOTHING",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Operator",
    "Requirement",
    "convert_field_labels",
    "escape_field_value",
    "label_selector_from_object",
    "label_selector_from_set",
    "parse_field_selector",
    "parse_label_selector",
    "unescape_field_value",
    # metav1 LabelSelector validation lives with the other shared validators.
    "validate_label_selector",
]


class Operator(StrEnum):
    """selection.Operator: the values are the names apimachinery gives them."""

    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_SELECTS_VALUE: Final = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.IN})
_EXCLUDES_VALUE: Final = frozenset({Operator.NOT_EQUALS, Operator.NOT_IN})
_EXACT_MATCH: Final = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS})
_COMPARISON: Final = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
# As apimachinery lists the binary operators in "expected: ..." messages.
_BINARY_OPERATOR_NAMES: Final = "in, notin, =, ==, !=, gt, lt"
_INT64_TEXT = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NO_LABELS: Mapping[str, str] = {}


def _parse_int64(text: str) -> int | None:
    """strconv.ParseInt(text, 10, 64): no spaces or underscores, within int64."""
    if not _INT64_TEXT.fullmatch(text):
        return None
    number = int(text)
    return number if _INT64_MIN <= number <= _INT64_MAX else None


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term of a label selector: `key` related to `values` by `operator`."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        operator = self.operator
        if operator is Operator.EXISTS:
            return self.key in labels
        if operator is Operator.DOES_NOT_EXIST:
            return self.key not in labels
        value = labels.get(self.key)
        if operator in _SELECTS_VALUE:
            return value is not None and value in self.values
        if operator in _EXCLUDES_VALUE:
            return value is None or value not in self.values
        if value is None or len(self.values) != 1:
            return False
        actual, bound = _parse_int64(value), _parse_int64(self.values[0])
        if actual is None or bound is None:
            return False
        return actual > bound if operator is Operator.GREATER_THAN else actual < bound

    def __str__(self) -> str:
        operator = self.operator
        if operator is Operator.EXISTS:
            return self.key
        if operator is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        # Values print sorted whatever order they were given in.
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if operator is Operator.IN:
            return f"{self.key} in ({values})"
        if operator is Operator.NOT_IN:
            return f"{self.key} notin ({values})"
        if operator is Operator.GREATER_THAN:
            return f"{self.key}>{values}"
        if operator is Operator.LESS_THAN:
            return f"{self.key}<{values}"
        return f"{self.key}{operator.value}{values}"


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """An AND of requirements, sorted by key. `selects_nothing` is the selector a nil
    metav1.LabelSelector converts to: it matches no object."""

    requirements: tuple[Requirement, ...] = ()
    selects_nothing: bool = False
    # Every requirement is `key=value` (the common case): matching is plain lookups.
    _equalities: tuple[tuple[str, str], ...] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if all(r.operator in _SELECTS_VALUE and len(r.values) == 1 for r in self.requirements):
            pairs = tuple((r.key, r.values[0]) for r in self.requirements)
            object.__setattr__(self, "_equalities", pairs)

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (it matches every object)."""
        return not self.requirements and not self.selects_nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.selects_nothing:
            return False
        if labels is None:
            labels = _NO_LABELS
        if self._equalities is not None:
            # Plain loops: this runs once per object in every filtered list and watch.
            for key, value in self._equalities:  # noqa: SIM110
                if labels.get(key) != value:
                    return False
            return True
        for requirement in self.requirements:  # noqa: SIM110
            if not requirement.matches(labels):
                return False
        return True

    def requires_exact_match(self, key: str) -> str | None:
        """The single value `key` must have, when the selector pins it (labels.Selector
        RequiresExactMatch); None otherwise."""
        for requirement in self.requirements:
            if requirement.key == key:
                if requirement.operator in _SELECTS_VALUE and len(requirement.values) == 1:
                    return requirement.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING: Final = LabelSelector()
NOTHING: Final = LabelSelector(selects_nothing=True)


# -- requirement validation ----------------------------------------------------------------


def _go_quote(text: str) -> str:
    """Go's %q for a string, close enough for messages: escapes quotes, backslashes and
    control characters, keeps printable Unicode."""
    out = ['"']
    for char in text:
        if char in ('"', "\\"):
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif char == "\r":
            out.append("\\r")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _go_string_slice(values: Iterable[str]) -> str:
    """Go's %#v for a []string, as field errors print a values list."""
    items = list(values)
    if not items:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_quote(v) for v in items) + "}"


def _invalid(path: str, rendered_value: str, detail: str) -> str:
    return f"{path}: Invalid value: {rendered_value}: {detail}"


def _aggregate(messages: list[str]) -> str:
    """utilerrors.Aggregate's Error(): one message alone, several in brackets, deduplicated."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def _values_count_problem(operator: Operator, count: int) -> str | None:
    if operator in (Operator.IN, Operator.NOT_IN):
        return "for 'in', 'notin' operators, values set can't be empty" if count == 0 else None
    if operator in _EXACT_MATCH:
        return "exact-match compatibility requires one single value" if count != 1 else None
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        return "values set must be empty for exists and does not exist" if count else None
    return "for 'Gt', 'Lt' operators, exactly one value is required" if count != 1 else None


def _requirement_problems(key: str, operator: Operator, values: list[str]) -> list[str]:
    """What labels.NewRequirement rejects, worded as it words it (paths relative to a
    nameless root: `key`, `values`, `values[0][<key>]`)."""
    problems: list[str] = []
    key_problems = qualified_name_problems(key)
    if key_problems:
        problems.append(_invalid("key", _go_quote(key), "; ".join(key_problems)))
    count_problem = _values_count_problem(operator, len(values))
    if count_problem:
        problems.append(_invalid("values", _go_string_slice(values), count_problem))
    if operator in _COMPARISON:
        problems.extend(
            _invalid(
                f"values[{index}]",
                _go_quote(value),
                "for 'Gt', 'Lt' operators, the value must be an integer",
            )
            for index, value in enumerate(values)
            if _parse_int64(value) is None
        )
    for index, value in enumerate(values):
        value_problems = label_value_problems(value)
        if value_problems:
            problems.append(
                _invalid(f"values[{index}][{key}]", _go_quote(value), "; ".join(value_problems))
            )
    return problems


def _new_requirement(key: str, operator: Operator, values: list[str]) -> Requirement:
    problems = _requirement_problems(key, operator, values)
    if problems:
        raise _ParseError(_aggregate(problems))
    return Requirement(key, operator, tuple(values))


def _sorted_selector(requirements: list[Requirement]) -> LabelSelector:
    requirements.sort(key=lambda r: r.key)
    return LabelSelector(tuple(requirements))


# -- label selector strings -----------------------------------------------------------------


class _ParseError(Exception):
    pass


class _Token(Enum):
    ERROR = 0
    END = 1
    CLOSE = 2
    COMMA = 3
    NOT = 4
    DOUBLE_EQUALS = 5
    EQUALS = 6
    GREATER_THAN = 7
    IDENTIFIER = 8
    IN = 9
    LESS_THAN = 10
    NOT_EQUALS = 11
    NOT_IN = 12
    OPEN = 13


_LITERALS: Final = {
    ")": _Token.CLOSE,
    ",": _Token.COMMA,
    "!": _Token.NOT,
    "==": _Token.DOUBLE_EQUALS,
    "=": _Token.EQUALS,
    ">": _Token.GREATER_THAN,
    "in": _Token.IN,
    "<": _Token.LESS_THAN,
    "!=": _Token.NOT_EQUALS,
    "notin": _Token.NOT_IN,
    "(": _Token.OPEN,
}
_OPERATOR_TOKENS: Final = {
    _Token.IN: Operator.IN,
    _Token.NOT_IN: Operator.NOT_IN,
    _Token.EQUALS: Operator.EQUALS,
    _Token.DOUBLE_EQUALS: Operator.DOUBLE_EQUALS,
    _Token.NOT_EQUALS: Operator.NOT_EQUALS,
    _Token.GREATER_THAN: Operator.GREATER_THAN,
    _Token.LESS_THAN: Operator.LESS_THAN,
}
_SPECIAL: Final = frozenset("=!(),><")
_WHITESPACE: Final = frozenset(" \t\r\n")
_Item = tuple[_Token, str]


def _scan(text: str) -> list[_Item]:
    """The lexer: identifiers run until whitespace or an operator character; operators
    are the longest known run of operator characters. A NUL ends the input where a token
    would start, as in apimachinery's byte lexer."""
    items: list[_Item] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end or text[pos] == "\0":
            items.append((_Token.END, ""))
            return items
        if text[pos] in _SPECIAL:
            buffer = ""
            last: _Item | None = None
            while pos < end:
                char = text[pos]
                pos += 1
                if char == "\0":
                    break
                if char not in _SPECIAL:
                    pos -= 1
                    break
                buffer += char
                token = _LITERALS.get(buffer)
                if token is not None:
                    last = (token, buffer)
                elif last is not None:
                    pos -= 1
                    break
            items.append(last or (_Token.ERROR, f"error expected: keyword found '{buffer}'"))
            continue
        start = pos
        while pos < end and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            if text[pos] == "\0":
                break
            pos += 1
        literal = text[start:pos]
        if pos < end and text[pos] == "\0":
            pos += 1
        items.append((_LITERALS.get(literal, _Token.IDENTIFIER), literal))


class _Parser:
    """Recursive descent over the scanned tokens. In value position `in` and `notin` are
    plain identifiers (`x in (in)` is valid)."""

    def __init__(self, text: str) -> None:
        self.items = _scan(text)
        self.position = 0

    def _item(self, index: int, as_value: bool) -> _Item:
        token, literal = self.items[min(index, len(self.items) - 1)]
        if as_value and token in (_Token.IN, _Token.NOT_IN):
            token = _Token.IDENTIFIER
        return token, literal

    def lookahead(self, as_value: bool = True) -> _Item:
        return self._item(self.position, as_value)

    def consume(self, as_value: bool = True) -> _Item:
        self.position += 1
        return self._item(self.position - 1, as_value)

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token, literal = self.lookahead()
            if token is _Token.END:
                return requirements
            if token not in (_Token.IDENTIFIER, _Token.NOT):
                raise _ParseError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.parse_requirement())
            except _ParseError as error:
                raise _ParseError(f"unable to parse requirement: {error}") from None
            token, literal = self.consume()
            if token is _Token.END:
                return requirements
            if token is not _Token.COMMA:
                raise _ParseError(f"found '{literal}', expected: ',' or 'end of string'")
            following, literal = self.lookahead()
            if following not in (_Token.IDENTIFIER, _Token.NOT):
                raise _ParseError(f"found '{literal}', expected: identifier after ','")

    def parse_requirement(self) -> Requirement:
        key, inferred = self.parse_key()
        if inferred is not None:
            return _new_requirement(key, inferred, [])
        token, literal = self.consume(as_value=False)
        operator = _OPERATOR_TOKENS.get(token)
        if operator is None:
            raise _ParseError(f"found '{literal}', expected: {_BINARY_OPERATOR_NAMES}")
        if operator in (Operator.IN, Operator.NOT_IN):
            values = self.parse_values()
        else:
            values = self.parse_exact_value()
        return _new_requirement(key, operator, sorted(values))

    def parse_key(self) -> tuple[str, Operator | None]:
        """The key, and the operator when the requirement is unary (`key`, `!key`)."""
        operator: Operator | None = None
        token, literal = self.consume()
        if token is _Token.NOT:
            operator = Operator.DOES_NOT_EXIST
            token, literal = self.consume()
        if token is not _Token.IDENTIFIER:
            raise _ParseError(f"found '{literal}', expected: identifier")
        problems = qualified_name_problems(literal)
        if problems:
            # apimachinery validates the key here against a nil field path.
            raise _ParseError(_invalid("<nil>", _go_quote(literal), "; ".join(problems)))
        following, _ = self.lookahead()
        if following in (_Token.END, _Token.COMMA) and operator is None:
            operator = Operator.EXISTS
        return literal, operator

    def parse_values(self) -> set[str]:
        token, literal = self.consume()
        if token is not _Token.OPEN:
            raise _ParseError(f"found '{literal}' expected: '('")
        token, literal = self.lookahead()
        if token in (_Token.IDENTIFIER, _Token.COMMA):
            values = self.parse_identifier_list()
            if self.consume()[0] is not _Token.CLOSE:
                raise _ParseError(f"found '{literal}', expected: ')'")
            return values
        if token is _Token.CLOSE:
            self.consume()
            return {""}
        raise _ParseError(f"found '{literal}', expected: ',', ')' or identifier")

    def parse_identifier_list(self) -> set[str]:
        """Comma-separated, possibly empty values: `(a,,b)` and `(,a)` include ""."""
        values: set[str] = set()
        while True:
            token, literal = self.consume()
            if token is _Token.IDENTIFIER:
                values.add(literal)
                following, following_literal = self.lookahead()
                if following is _Token.COMMA:
                    continue
                if following is _Token.CLOSE:
                    return values
                raise _ParseError(f"found '{following_literal}', expected: ',' or ')'")
            if token is _Token.COMMA:
                if not values:
                    values.add("")
                following, _ = self.lookahead()
                if following is _Token.CLOSE:
                    values.add("")
                    return values
                if following is _Token.COMMA:
                    self.consume()
                    values.add("")
                continue
            raise _ParseError(f"found '{literal}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        token, _ = self.lookahead()
        if token in (_Token.END, _Token.COMMA):
            return {""}
        token, literal = self.consume()
        if token is _Token.IDENTIFIER:
            return {literal}
        raise _ParseError(f"found '{literal}', expected: identifier")


@lru_cache(maxsize=512)
def _parse_label_selector(text: str) -> LabelSelector:
    return _sorted_selector(_Parser(text).parse())


def parse_label_selector(text: str) -> LabelSelector:
    """labels.Parse: the `labelSelector` query parameter. Raises a 400 on bad syntax."""
    try:
        return _parse_label_selector(text)
    except _ParseError as error:
        raise bad_request(str(error)) from None


# -- metav1.LabelSelector objects -----------------------------------------------------------

_OBJECT_OPERATORS: Final = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
}


def label_selector_from_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """metav1.LabelSelectorAsSelector: None selects nothing, an empty selector selects
    everything. Raises a 400 for what validation would have rejected; objects that passed
    `validate_label_selector` always convert."""
    if selector is None:
        return NOTHING
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    requirements: list[Requirement] = []
    try:
        for key, value in match_labels.items():
            requirements.append(_new_requirement(key, Operator.EQUALS, [value]))
        for expression in expressions:
            name = expression.get("operator", "")
            operator = _OBJECT_OPERATORS.get(name)
            if operator is None:
                raise _ParseError(f"{_go_quote(name)} is not a valid label selector operator")
            values = list(expression.get("values") or [])
            requirements.append(_new_requirement(expression.get("key", ""), operator, values))
    except _ParseError as error:
        raise bad_request(str(error)) from None
    return _sorted_selector(requirements)


def label_selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """labels.SelectorFromSet: `key=value` for each entry (a Service's or a
    ReplicationController's selector). Empty or None selects everything; not validated."""
    if not labels:
        return EVERYTHING
    return _sorted_selector([Requirement(k, Operator.EQUALS, (v,)) for k, v in labels.items()])


# -- field selectors ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """`field=value` (operator EQUALS, also for `==`) or `field!=value`."""

    field: str
    operator: Operator
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator is Operator.EQUALS else not equal

    def __str__(self) -> str:
        symbol = "=" if self.operator is Operator.EQUALS else "!="
        return f"{self.field}{symbol}{escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """An AND of field requirements, in the order apimachinery keeps them (sorted terms)."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    @property
    def field_names(self) -> frozenset[str]:
        return frozenset(r.field for r in self.requirements)

    def matches(self, fields: Mapping[str, str]) -> bool:
        for requirement in self.requirements:  # noqa: SIM110
            if not requirement.matches(fields):
                return False
        return True

    def requires_exact_match(self, field_name: str) -> str | None:
        """The value an `=` term pins `field_name` to, or None (fields.Selector
        RequiresExactMatch)."""
        for requirement in self.requirements:
            if requirement.field == field_name and requirement.operator is Operator.EQUALS:
                return requirement.value
        return None

    @property
    def exact_name(self) -> str | None:
        """`metadata.name=X` pins the list to one object: a list handler can get it by key."""
        return self.requires_exact_match("metadata.name")

    @property
    def exact_namespace(self) -> str | None:
        return self.requires_exact_match("metadata.namespace")

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_FIELD_ESCAPES: Final = str.maketrans({"\\": "\\\\", ",": "\\,", "=": "\\="})


def escape_field_value(value: str) -> str:
    """fields.EscapeValue: backslash-escape `\\`, `,` and `=`."""
    return value.translate(_FIELD_ESCAPES)


def unescape_field_value(text: str) -> str:
    """fields.UnescapeValue. Raises a 400 for a bad escape or a bare `,` or `=`."""
    if "\\" not in text and "," not in text and "=" not in text:
        return text
    out: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            if char not in ("\\", ",", "="):
                raise bad_request(f"invalid field selector: invalid escape sequence: \\{char}")
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in (",", "="):
            # apimachinery prints the rune as a number.
            raise bad_request(f"invalid field selector: unescaped character in value: {ord(char)}")
        else:
            out.append(char)
    if escaped:
        raise bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not escaped."""
    if "\\" not in text:
        return text.split(",")
    terms: list[str] = []
    start = 0
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, Operator, str] | None:
    """The first operator wins, trying `!=`, then `==`, then `=` at each position."""
    equals_at = term.find("=")
    if equals_at < 0:
        return None
    if equals_at > 0 and term[equals_at - 1] == "!":
        return term[: equals_at - 1], Operator.NOT_EQUALS, term[equals_at + 1 :]
    if term.startswith("==", equals_at):
        return term[:equals_at], Operator.EQUALS, term[equals_at + 2 :]
    return term[:equals_at], Operator.EQUALS, term[equals_at + 1 :]


@lru_cache(maxsize=512)
def _parse_field_selector(text: str) -> FieldSelector:
    if not text:
        return FieldSelector()
    requirements: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        parts = _split_term(term)
        if parts is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        name, operator, raw_value = parts
        requirements.append(FieldRequirement(name, operator, unescape_field_value(raw_value)))
    return FieldSelector(tuple(requirements))


def parse_field_selector(text: str) -> FieldSelector:
    """fields.ParseSelector: the `fieldSelector` query parameter. Raises a 400 on bad syntax."""
    return _parse_field_selector(text)


def convert_field_labels(
    selector: FieldSelector,
    supported: Collection[str],
    *,
    aliases: Mapping[str, str] | None = None,
    generic: bool = False,
) -> FieldSelector:
    """The field-label conversion kube-apiserver runs before a list or watch: each field
    must be one the kind supports (after renaming old `aliases`, e.g. pods' `spec.host`),
    or the request is a 400. Kinds that register their own conversion say
    `field label not supported: X`; kinds that do not (`generic=True`) get the default
    message naming metadata.name and metadata.namespace."""
    renamed: list[FieldRequirement] = []
    for requirement in selector.requirements:
        name = aliases.get(requirement.field, requirement.field) if aliases else requirement.field
        if name not in supported:
            raise _unsupported_field_label(requirement.field, generic)
        renamed.append(
            requirement
            if name == requirement.field
            else FieldRequirement(name, requirement.operator, requirement.value)
        )
    return FieldSelector(tuple(renamed))


def _unsupported_field_label(name: str, generic: bool) -> StatusError:
    if generic:
        return bad_request(
            f'{_go_quote(name)} is not a known field selector: only "metadata.name", '
            '"metadata.namespace"'
        )
    return bad_request(f"field label not supported: {name}")
