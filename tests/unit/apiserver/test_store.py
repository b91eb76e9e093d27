"""System fields the store fills in: uids and generated names."""

from __future__ import annotations

import re
import uuid

from timonel.apiserver.store import generate_name, new_uid


def test_uids_are_distinct_version_4_uuids() -> None:
    uids = [new_uid() for _ in range(1000)]  # more than one page of random bytes
    assert len(set(uids)) == len(uids)
    for text in uids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_generated_names_add_five_letters_of_apimachinery_s_alphabet() -> None:
    names = {generate_name("web-") for _ in range(2000)}
    assert all(re.fullmatch(r"web-[bcdfghjklmnpqrstvwxz2456789]{5}", name) for name in names)
    assert len(names) > 1990  # 27**5 possible suffixes: collisions are rare
