"""Timestamps in the plain UTC form skip the walk through Go's layout: same answers."""

from __future__ import annotations

import re

import pytest

from timonel.schema import fields

CASES = [
    "2026-11-26T13:21:23Z",
    "2026-02-28T00:00:00Z",
    "2024-02-29T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-13-01T00:00:00Z",
    "2026-11-26T24:00:00Z",
    "2026-11-26T13:21:60Z",
    "2026-11-26T13:21:23.123456Z",
    "2026-11-26T13:21:23.12345Z",
    "2026-11-26T13:21:23+01:00",
    "2026-1-26T13:21:23Z",
    "0000-01-01T00:00:00Z",
]


@pytest.mark.parametrize("text", CASES)
@pytest.mark.parametrize("micro", [False, True])
def test_the_fast_path_answers_as_the_full_parse(
    text: str, micro: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = fields._time_problem(text, micro=micro)
    never = re.compile(r"(?!)")
    monkeypatch.setattr(fields, "_PLAIN_TIME", never)
    monkeypatch.setattr(fields, "_PLAIN_MICRO_TIME", never)
    assert fast == fields._time_problem(text, micro=micro)
