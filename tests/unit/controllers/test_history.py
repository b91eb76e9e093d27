"""ControllerRevision helpers: hashing, encoding, naming, the revision of a template."""

from __future__ import annotations

from timonel.controllers.history import (
    apply_revision,
    equal_revisions,
    fnv32,
    fnv32a,
    go_json,
    hash_revision_data,
    hash_template,
    new_revision,
    next_revision_number,
    revision_name,
    safe_encode,
    sort_revisions,
    template_patch,
)


def test_fnv_matches_go_hash_fnv() -> None:
    assert fnv32a(b"") == 0x811C9DC5
    assert fnv32a(b"a") == 0xE40C292C
    assert fnv32(b"a") == 0x050C5D7E
    assert fnv32a(b"foobar") == 0xBF9CF968
    assert fnv32(b"foobar") == 0x31F0B262


def test_safe_encode_uses_the_generated_name_alphabet() -> None:
    assert safe_encode("123") == "567"
    assert set(safe_encode("0123456789")) <= set("bcdfghjklmnpqrstvwxz2456789")


def test_go_json_sorts_keys_and_escapes_html() -> None:
    assert go_json({"b": 1, "a": {"d": "<&>", "c": [True, None]}}) == (
        b'{"a":{"c":[true,null],"d":"\\u003c\\u0026\\u003e"},"b":1}'
    )


def owner(image: str = "nginx") -> dict[str, object]:
    return {
        "metadata": {"name": "web", "namespace": "ns", "uid": "u1", "annotations": {"note": "x"}},
        "spec": {
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]},
            }
        },
    }


def test_hashes_change_with_the_template_and_the_collision_count() -> None:
    data = template_patch(owner())
    assert data["spec"]["template"]["$patch"] == "replace"
    assert hash_revision_data(data, 0) == hash_revision_data(template_patch(owner()), 0)
    assert hash_revision_data(data, 0) != hash_revision_data(data, 1)
    assert hash_revision_data(data, 0) != hash_revision_data(template_patch(owner("httpd")), 0)
    template = owner()["spec"]["template"]  # type: ignore[index]
    assert hash_template(template, None) != hash_template(template, 1)


def test_new_revision() -> None:
    revision = new_revision(
        owner(),
        api_version="apps/v1",
        kind="StatefulSet",
        name="web-abc",
        hash_value="abc",
        revision=3,
    )
    assert revision["metadata"]["labels"] == {"app": "web", "controller-revision-hash": "abc"}
    assert revision["metadata"]["annotations"] == {"note": "x"}
    assert revision["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"
    assert revision["revision"] == 3
    assert equal_revisions(revision, {"data": template_patch(owner())})
    restored = apply_revision(owner("httpd"), revision)
    assert restored["spec"]["template"] == owner()["spec"]["template"]  # type: ignore[index]


def test_names_and_order() -> None:
    assert revision_name("web", "abc") == "web-abc"
    assert len(revision_name("x" * 300, "abc")) == 223 + 4
    revisions = [
        {"metadata": {"name": "b", "creationTimestamp": "2025-01-01T00:00:00Z"}, "revision": 2},
        {"metadata": {"name": "a", "creationTimestamp": "2025-01-01T00:00:00Z"}, "revision": 2},
        {"metadata": {"name": "c"}, "revision": 1},
    ]
    assert [r["metadata"]["name"] for r in sort_revisions(revisions)] == ["c", "a", "b"]
    assert next_revision_number(revisions) == 3
    assert next_revision_number([]) == 1
