"""System fields the store fills in: uids and generated names."""

from __future__ import annotations

import re
import uuid

from timonel.apiserver.store import (
    decode_from_storage,
    encode_for_storage,
    generate_name,
    new_uid,
)
from timonel.storage.interface import KeyValue


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


def test_a_handed_over_object_reads_as_its_stored_bytes_would() -> None:
    written = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "resourceVersion": "3", "labels": {"a": "b"}},
        "spec": {"nodeName": "n", "priority": 0, "enableServiceLinks": True},
    }
    value = encode_for_storage(written)
    written["metadata"]["resourceVersion"] = "9"  # what the writer does once it is stored
    parsed = decode_from_storage(KeyValue("/k", value, 8, 9))
    handed = decode_from_storage(KeyValue("/k", value, 8, 9, written))
    # Same keys in the same order, same types: the watch encodes both to the same bytes.
    assert repr(handed) == repr(parsed)
    assert handed["metadata"]["resourceVersion"] == "9"
    assert handed["spec"] is written["spec"]  # shared, not copied
    assert handed["metadata"] is not written["metadata"]
