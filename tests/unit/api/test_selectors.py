from __future__ import annotations

import pytest

from timonel.api.errors import StatusError
from timonel.api.selectors import (
    EVERYTHING,
    NOTHING,
    Operator,
    convert_field_labels,
    escape_field_value,
    label_selector_from_object,
    label_selector_from_set,
    parse_field_selector,
    parse_label_selector,
    validate_label_selector,
)

LABEL_VALUE_PROBLEM = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
NAME_PART_PROBLEM = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
    "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"


# -- label selector strings --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("x=a,y=b,z=c", "x=a,y=b,z=c"),
        ("x=a,a=x", "a=x,x=a"),
        ("x!=a,y=b", "x!=a,y=b"),
        ("x==a", "x==a"),
        ("x=", "x="),
        ("x= ,z= ", "x=,z="),
        ("!x", "!x"),
        ("x", "x"),
        ("\rx", "x"),
        ("x>1,z<5", "x>1,z<5"),
        ("foo  in\t (abc)", "foo in (abc)"),
        ("x notin\n (abc)", "x notin (abc)"),
        ("x in (def,abc,abc)", "x in (abc,def)"),
        ("x in (abc,)", "x in (,abc)"),
        ("x in ()", "x in ()"),
        ("x notin ( )", "x notin ()"),
        ("x notin (, a)", "x notin (,a)"),
        ("x notin (abc,,def),bar,z in (),w", "bar,w,x notin (,abc,def),z in ()"),
        ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
        ("in in (in)", "in in (in)"),
        ("notin=in", "notin=in"),
        ("example.com/tier in (web), app", "app,example.com/tier in (web)"),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)",
        ),
    ],
)
def test_parse_gives_the_canonical_string(text: str, canonical: str) -> None:
    assert str(parse_label_selector(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x,,y", "found ',', expected: identifier after ','"),
        (",x,y", "found ',', expected: !, identifier, or 'end of string'"),
        ("(", "found '(', expected: !, identifier, or 'end of string'"),
        ("a in (xyz),", "found '', expected: identifier after ','"),
        ("a in (xyz)b notin ()", "found 'b', expected: ',' or 'end of string'"),
        ("x==a==b", "found '==', expected: ',' or 'end of string'"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        (
            "x nott in (y)",
            f"unable to parse requirement: found 'nott', expected: {BINARY_OPERATORS}",
        ),
        ("a (", f"unable to parse requirement: found '(', expected: {BINARY_OPERATORS}"),
        ("a!b", f"unable to parse requirement: found '!', expected: {BINARY_OPERATORS}"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("a in (xyz abc)", "unable to parse requirement: found 'abc', expected: ',' or ')'"),
        ("a notin(", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        (
            "x<a",
            'unable to parse requirement: values[0]: Invalid value: "a": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("-a", f'unable to parse requirement: <nil>: Invalid value: "-a": {NAME_PART_PROBLEM}'),
        (
            "app=-x",
            f'unable to parse requirement: values[0][app]: Invalid value: "-x": {LABEL_VALUE_PROBLEM}',
        ),
        (
            "k in (-b,-a)",
            f'unable to parse requirement: [values[0][k]: Invalid value: "-a": {LABEL_VALUE_PROBLEM}, '
            f'values[1][k]: Invalid value: "-b": {LABEL_VALUE_PROBLEM}]',
        ),
        (
            "a/b/c=d",
            'unable to parse requirement: <nil>: Invalid value: "a/b/c": a qualified name must '
            "consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
            "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS "
            "subdomain prefix and '/' (e.g. 'example.com/MyName')",
        ),
        (
            "/a",
            'unable to parse requirement: <nil>: Invalid value: "/a": '
            "prefix part must be non-empty",
        ),
        (
            "run:tmp",
            f'unable to parse requirement: <nil>: Invalid value: "run:tmp": {NAME_PART_PROBLEM}',
        ),
    ],
)
def test_parse_errors_are_400_worded_as_apimachinery(text: str, message: str) -> None:
    with pytest.raises(StatusError) as raised:
        parse_label_selector(text)
    assert (raised.value.code, raised.value.reason) == (400, "BadRequest")
    assert raised.value.message == message


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("", {"x": "y"}, True),
        ("", None, True),
        ("x=y", {"x": "y"}, True),
        ("x=y", {"x": "z"}, False),
        ("x=z", {}, False),
        ("x=z", None, False),
        ("x=y,z=w", {"x": "y", "z": "w"}, True),
        ("x=y,z=w", {"x": "w", "z": "w"}, False),
        ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
        ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
        ("x!=y", {}, True),
        ("x=", {"x": ""}, True),
        ("x=", {}, False),
        ("x", {"x": "z"}, True),
        ("x", {"y": "z"}, False),
        ("!x", {"y": "z"}, True),
        ("!x", {"x": "z"}, False),
        ("x in (a,b)", {"x": "b"}, True),
        ("x in (a,b)", {"x": "c"}, False),
        ("x in (a,b)", {}, False),
        ("x notin (a,b)", {}, True),
        ("x notin (a,b)", {"x": "a"}, False),
        ("x notin ()", {"y": ""}, True),
        ("x in ()", {"y": "baz"}, False),
        ("x>1", {"x": "2"}, True),
        ("x>1", {"x": "0"}, False),
        ("x>1", {"x": "v2"}, False),
        ("x>1", {}, False),
        ("x<1", {"x": "-3"}, True),
        ("x<1", {"x": "2"}, False),
        ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
        ("app=web,tier in (fe,be),!canary", {"app": "web", "tier": "be"}, True),
        ("app=web,tier in (fe,be),!canary", {"app": "web", "tier": "be", "canary": ""}, False),
    ],
)
def test_label_selector_matching(text: str, labels: dict[str, str] | None, matches: bool) -> None:
    assert parse_label_selector(text).matches(labels) is matches


def test_empty_and_nothing() -> None:
    assert parse_label_selector("").empty
    assert not parse_label_selector("a").empty
    assert EVERYTHING.empty and EVERYTHING.matches({"a": "b"})
    assert not NOTHING.empty
    assert not NOTHING.matches({}) and not NOTHING.matches({"a": "b"})
    assert str(NOTHING) == ""


def test_requires_exact_match() -> None:
    selector = parse_label_selector("app=web,tier in (fe),env in (a,b),!gone")
    assert selector.requires_exact_match("app") == "web"
    assert selector.requires_exact_match("tier") == "fe"
    assert selector.requires_exact_match("env") is None
    assert selector.requires_exact_match("gone") is None
    assert selector.requires_exact_match("missing") is None


# -- metav1.LabelSelector objects ----------------------------------------------------------------


def test_selector_object_conversion() -> None:
    assert label_selector_from_object(None) is NOTHING
    assert label_selector_from_object({}).empty
    assert label_selector_from_object({"matchLabels": {}, "matchExpressions": []}).empty
    selector = label_selector_from_object(
        {
            "matchLabels": {"tier": "fe", "app": "web"},
            "matchExpressions": [
                {"key": "env", "operator": "NotIn", "values": ["prod", "dev"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "zone", "operator": "Exists"},
                {"key": "track", "operator": "In", "values": ["b", "a"]},
            ],
        }
    )
    assert str(selector) == "app=web,!canary,env notin (dev,prod),tier=fe,track in (a,b),zone"
    assert selector.matches({"app": "web", "tier": "fe", "zone": "z1", "track": "a"})
    assert not selector.matches({"app": "web", "tier": "fe", "zone": "z1", "track": "c"})
    assert not selector.matches({"app": "web", "tier": "fe", "track": "a"})
    assert not selector.matches(
        {"app": "web", "tier": "fe", "zone": "z", "track": "a", "env": "dev"}
    )


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
            '"Gt" is not a valid label selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            'values: Invalid value: []string{"x"}: values set must be empty for exists and does not exist',
        ),
        ({"matchLabels": {"a": "-"}}, f'values[0][a]: Invalid value: "-": {LABEL_VALUE_PROBLEM}'),
        ({"matchLabels": {"a\n": "b"}}, f'key: Invalid value: "a\\n": {NAME_PART_PROBLEM}'),
    ],
)
def test_selector_object_conversion_errors(selector: dict[str, object], message: str) -> None:
    with pytest.raises(StatusError) as raised:
        label_selector_from_object(selector)
    assert raised.value.message == message


def test_selector_object_validation() -> None:
    errors = validate_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "a", "operator": "In"},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Gt", "values": ["1"]},
                {"key": "-d", "operator": "NotIn", "values": ["ok", "-no"]},
            ],
        },
        "spec.selector",
    )
    assert [e.message() for e in errors] == [
        "spec.selector.matchExpressions[0].values: Required value: "
        "must be specified when `operator` is 'In' or 'NotIn'",
        "spec.selector.matchExpressions[1].values: Forbidden: "
        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        'spec.selector.matchExpressions[2].operator: Invalid value: "Gt": '
        "not a valid selector operator",
        f'spec.selector.matchExpressions[3].key: Invalid value: "-d": {NAME_PART_PROBLEM}',
        f'spec.selector.matchExpressions[3].values[1]: Invalid value: "-no": {LABEL_VALUE_PROBLEM}',
    ]
    assert validate_label_selector({"matchLabels": {"app": "web"}}, "spec.selector") == []
    assert validate_label_selector(None, "spec.selector") == []


def test_selector_from_set() -> None:
    assert label_selector_from_set(None).empty
    assert label_selector_from_set({}).empty
    selector = label_selector_from_set({"b": "2", "a": "1"})
    assert str(selector) == "a=1,b=2"
    assert selector.matches({"a": "1", "b": "2", "c": "3"})
    assert not selector.matches({"a": "1"})


# -- field selectors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("metadata.name=foo", "metadata.name=foo"),
        ("a==b", "a=b"),
        ("b=2,a=1", "a=1,b=2"),
        ("x=1,,", "x=1"),
        (
            "involvedObject.namespace=,involvedObject.name=x",
            "involvedObject.name=x,involvedObject.namespace=",
        ),
        (
            "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed",
            "spec.nodeName=n1,status.phase!=Failed,status.phase!=Succeeded",
        ),
        ("a=b\\,c\\=d\\\\e", "a=b\\,c\\=d\\\\e"),
        ("a!b=c", "a!b=c"),
    ],
)
def test_field_selector_canonical_string(text: str, canonical: str) -> None:
    assert str(parse_field_selector(text)) == canonical


def test_field_selector_unescapes_values() -> None:
    (requirement,) = parse_field_selector("a=b\\,c\\=d\\\\e").requirements
    assert (requirement.field, requirement.operator, requirement.value) == (
        "a",
        Operator.EQUALS,
        "b,c=d\\e",
    )
    assert escape_field_value("b,c=d\\e") == "b\\,c\\=d\\\\e"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a", "invalid selector: 'a'; can't understand 'a'"),
        ("x=1,b", "invalid selector: 'x=1,b'; can't understand 'b'"),
        ("a=b=c", "invalid field selector: unescaped character in value: 61"),
        ("a=b\\x", "invalid field selector: invalid escape sequence: \\x"),
        ("a=b\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(StatusError) as raised:
        parse_field_selector(text)
    assert (raised.value.code, raised.value.message) == (400, message)


@pytest.mark.parametrize(
    ("text", "fields", "matches"),
    [
        ("", {"a": "b"}, True),
        ("metadata.name=web", {"metadata.name": "web"}, True),
        ("metadata.name=web", {"metadata.name": "db"}, False),
        ("status.phase!=Failed", {"status.phase": "Running"}, True),
        ("status.phase!=Failed", {"status.phase": "Failed"}, False),
        ("involvedObject.namespace=", {"involvedObject.namespace": ""}, True),
        ("involvedObject.namespace=", {}, True),
        ("spec.nodeName=n1", {}, False),
        ("spec.nodeName!=", {}, False),
        (
            "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed",
            {"spec.nodeName": "n1", "status.phase": "Running"},
            True,
        ),
        (
            "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed",
            {"spec.nodeName": "n1", "status.phase": "Succeeded"},
            False,
        ),
    ],
)
def test_field_selector_matching(text: str, fields: dict[str, str], matches: bool) -> None:
    assert parse_field_selector(text).matches(fields) is matches


def test_field_selector_exact_lookups() -> None:
    selector = parse_field_selector("metadata.namespace=ns1,metadata.name=web")
    assert (selector.exact_name, selector.exact_namespace) == ("web", "ns1")
    assert selector.field_names == {"metadata.name", "metadata.namespace"}
    negated = parse_field_selector("metadata.name!=web")
    assert negated.exact_name is None
    assert parse_field_selector("").empty


def test_field_label_conversion() -> None:
    pods = {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"}
    converted = convert_field_labels(
        parse_field_selector("spec.host=n1,status.phase=Running"),
        pods,
        aliases={"spec.host": "spec.nodeName"},
    )
    assert str(converted) == "spec.nodeName=n1,status.phase=Running"

    with pytest.raises(StatusError) as raised:
        convert_field_labels(parse_field_selector("spec.foo=1,metadata.name=a,bar=2"), pods)
    assert (raised.value.code, raised.value.message) == (400, "field label not supported: bar")

    with pytest.raises(StatusError) as raised:
        convert_field_labels(
            parse_field_selector("spec.replicas=1"),
            {"metadata.name", "metadata.namespace"},
            generic=True,
        )
    assert raised.value.message == (
        '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'
    )
