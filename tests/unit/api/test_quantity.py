"""resource.Quantity parsing and canonical form, checked against apimachinery's behaviour."""

from __future__ import annotations

import pytest

from timonel.api.quantity import (
    FORMAT_WRONG,
    NUMERIC_WRONG,
    SUFFIX_WRONG,
    Format,
    Quantity,
    QuantityError,
    canonical_quantity,
    canonical_resource_list,
    parse_quantity,
    parse_quantity_value,
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("0", "0"),
        ("0.5", "500m"),
        ("1000m", "1"),
        ("1500m", "1500m"),
        ("1.5", "1500m"),
        ("100m", "100m"),
        ("1", "1"),
        ("2k", "2k"),
        ("1.1k", "1100"),
        ("1Gi", "1Gi"),
        ("1024Mi", "1Gi"),
        ("2048Ki", "2Mi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("0.5Ki", "512"),
        ("1e3", "1e3"),
        ("1E3", "1E3"),
        ("1000e0", "1e3"),
        ("12e6", "12e6"),
        ("129e-2", "1290e-3"),
        ("1E", "1E"),
        ("1n", "1n"),
        ("0.1m", "100u"),
        ("1e-10", "1e-9"),
        ("-1Ki", "-1Ki"),
        ("-0.5", "-500m"),
        (".5", "500m"),
        ("0.100", "100m"),
        # Strings already in canonical shape are kept verbatim, sign and zeros included.
        ("+1", "+1"),
        ("01", "01"),
        ("10Mi", "10Mi"),
        # Beyond the largest suffix apimachinery writes the bare mantissa.
        ("1000E", "1"),
    ],
)
def test_canonical_form(text: str, canonical: str) -> None:
    assert str(parse_quantity(text)) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", FORMAT_WRONG),
        ("abc", FORMAT_WRONG),
        ("1x", FORMAT_WRONG),
        ("1KiB", FORMAT_WRONG),
        (" 1", FORMAT_WRONG),
        ("1.2.3", FORMAT_WRONG),
        ("1k3", SUFFIX_WRONG),
        ("1e", SUFFIX_WRONG),
        ("--1", SUFFIX_WRONG),
        ("-Ei", NUMERIC_WRONG),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(QuantityError) as caught:
        parse_quantity(text)
    assert str(caught.value) == message


def test_format_error_names_the_regex() -> None:
    assert FORMAT_WRONG == (
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    )


def test_formats_are_remembered() -> None:
    assert parse_quantity("1Gi").format is Format.BINARY_SI
    assert parse_quantity("1e3").format is Format.DECIMAL_EXPONENT
    assert parse_quantity("500m").format is Format.DECIMAL_SI
    # A fraction of a binary unit below one unit is DecimalSI.
    assert parse_quantity("0.0001Ki").format is Format.DECIMAL_SI


def test_values() -> None:
    assert parse_quantity("1.5").milli_value() == 1500
    assert parse_quantity("1.5").value() == 2
    assert parse_quantity("1Mi").value() == 1048576
    assert parse_quantity("-1.5").value() == -2
    assert parse_quantity("1n").milli_value() == 1
    assert parse_quantity("250m").as_float() == 0.25


def test_comparison_ignores_format() -> None:
    assert parse_quantity("1Ki") == parse_quantity("1024")
    assert parse_quantity("1k") < parse_quantity("1Ki")
    assert parse_quantity("500m") <= parse_quantity("0.5")
    assert parse_quantity("2") > parse_quantity("1999m")
    assert parse_quantity("1").cmp(parse_quantity("1000m")) == 0
    assert hash(parse_quantity("1")) == hash(parse_quantity("1000m"))


def test_arithmetic() -> None:
    total = parse_quantity("100m") + parse_quantity("1")
    assert str(total) == "1100m"
    assert str(parse_quantity("1Gi") - parse_quantity("512Mi")) == "512Mi"
    assert str(parse_quantity("250m") * 4) == "1"
    assert str(-parse_quantity("1Ki")) == "-1Ki"
    # Adding to zero takes the other operand's format.
    assert str(Quantity(0) + parse_quantity("2Gi")) == "2Gi"
    assert str(Quantity.from_milli(1500)) == "1500m"
    assert str(Quantity.from_int(3, Format.BINARY_SI)) == "3"


def test_round_up_to_thousandths() -> None:
    assert str(parse_quantity("0.1m").round_up(-3)) == "1m"
    assert str(parse_quantity("1n").round_up(-3)) == "1m"
    assert str(parse_quantity("1.0001Ki").round_up(-3)) == "1024103m"
    assert str(parse_quantity("-1.5m").round_up(-3)) == "-2m"


def test_json_numbers() -> None:
    assert canonical_quantity(0.5) == "500m"
    assert canonical_quantity(2) == "2"
    assert canonical_quantity(1.0) == "1"
    assert canonical_quantity("  250m ") == "250m"
    with pytest.raises(QuantityError):
        parse_quantity_value(True)
    with pytest.raises(QuantityError):
        parse_quantity_value(None)


def test_resource_list() -> None:
    canonical, bad = canonical_resource_list(
        {"cpu": 0.5, "memory": "1.5Gi", "x": "nope", "t": "0.1m"}
    )
    assert canonical == {"cpu": "500m", "memory": "1536Mi", "x": "nope", "t": "1m"}
    assert bad == [("x", "nope", FORMAT_WRONG)]


def test_repeated_texts_parse_the_same_and_the_memory_stays_bounded() -> None:
    # Parsed quantities are remembered by their text: a second parse (and a second
    # canonicalization) answers as the first did, errors included.
    for text in ("100m", "500Mi", "1.5Gi", "0.5Ki", "1e3", " 250m "):
        first, second = parse_quantity_value(text), parse_quantity_value(text)
        assert (str(first), first.nanos, first.format) == (str(second), second.nanos, second.format)
        assert canonical_resource_list({"r": text}) == canonical_resource_list({"r": text})
    for _ in range(2):
        with pytest.raises(QuantityError, match="quantities must match"):
            parse_quantity("1.5.5")
        assert canonical_resource_list({"x": "1.5.5"}) == (
            {"x": "1.5.5"},
            [("x", "1.5.5", FORMAT_WRONG)],
        )
    for i in range(10_000):
        assert str(parse_quantity(f"{i}m")) == (f"{i}m" if i % 1000 else str(i // 1000))
        canonical_resource_list({"cpu": f"{i}m"})
    from timonel.api import quantity

    assert quantity.parse_quantity.cache_info().currsize <= quantity._CACHE_SIZE
    assert quantity._canonical_milli.cache_info().currsize <= quantity._CACHE_SIZE
