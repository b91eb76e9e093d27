"""ControllerRevisions: the template history DaemonSets and StatefulSets keep (kube's
pkg/controller/history and the revision code of both controllers): pure functions over
revisions, then the few API calls both controllers make on them.

A revision's `data` is a patch that replaces `spec.template`; two revisions are the same
when their data serialise to the same bytes. Names are `<owner>-<hash>`, where the hash
is computed from the data (StatefulSet) or from the template (DaemonSet) plus the owner's
collision count, and encoded with the alphabet apimachinery uses for generated names.
"""

from __future__ import annotations

import copy
import json
import struct
from collections.abc import Iterable
from typing import Any

from timonel.api.errors import StatusError
from timonel.api.objects import Object, parse_rfc3339
from timonel.client.resources import CONTROLLERREVISIONS, Resource
from timonel.client.rest import ApiClient
from timonel.controllers.ownership import ControllerRefManager, controller_reference, recheck_owner
from timonel.controllers.pods import meta
from timonel.controllers.workloads import selector_matches

REVISION_HASH_LABEL = "controller-revision-hash"
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_MAX_PREFIX_LENGTH = 223


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: every byte mapped onto a vowel-free alphabet."""
    return "".join(_SAFE_ALPHABET[byte % len(_SAFE_ALPHABET)] for byte in text.encode())


def fnv32(data: bytes) -> int:
    """FNV-1, 32 bits (Go's hash/fnv New32)."""
    value = 0x811C9DC5
    for byte in data:
        value = (value * 0x01000193) & 0xFFFFFFFF
        value ^= byte
    return value


def fnv32a(data: bytes) -> int:
    """FNV-1a, 32 bits (Go's hash/fnv New32a)."""
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def go_json(value: Any) -> bytes:
    """What Go's json.Marshal writes for a decoded JSON value: keys sorted, no spaces,
    and <, >, & escaped."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text.encode()


def template_patch(owner: Object) -> Object:
    """getPatch: a patch of the owner that replaces its whole pod template."""
    template = copy.deepcopy((owner.get("spec") or {}).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_name(prefix: str, hash_value: str) -> str:
    return f"{prefix[:_MAX_PREFIX_LENGTH]}-{hash_value}"


def hash_revision_data(data: Any, collision_count: int | None) -> str:
    """history.HashControllerRevision: FNV-1 of the data, then of the collision count."""
    hashed = go_json(data)
    if collision_count is not None:
        hashed += str(collision_count).encode()
    return safe_encode(str(fnv32(hashed)))


def hash_template(template: Any, collision_count: int | None) -> str:
    """controller.ComputeHash (the DaemonSet's): FNV-1a of the template, then of the
    collision count as a little-endian integer."""
    hashed = go_json(template or {})
    if collision_count is not None:
        hashed += struct.pack("<I", collision_count & 0xFFFFFFFF) + bytes(4)
    return safe_encode(str(fnv32a(hashed)))


def new_revision(
    owner: Object,
    *,
    api_version: str,
    kind: str,
    name: str,
    hash_value: str,
    revision: int,
) -> Object:
    """A ControllerRevision of `owner`'s current template, labelled like the template
    and with the hash, annotated like the owner, controlled by the owner."""
    owner_meta = meta(owner)
    template = (owner.get("spec") or {}).get("template") or {}
    labels = dict(meta(template).get("labels") or {})
    labels[REVISION_HASH_LABEL] = hash_value
    revision_meta: dict[str, Any] = {
        "name": name,
        "namespace": owner_meta.get("namespace", ""),
        "labels": labels,
        "ownerReferences": [controller_reference(owner, api_version, kind)],
    }
    annotations = owner_meta.get("annotations")
    if annotations:
        revision_meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": revision_meta,
        "data": template_patch(owner),
        "revision": revision,
    }


def same_data(revision: Object, data: Any) -> bool:
    """Whether a stored revision carries exactly this data."""
    return go_json(revision.get("data")) == go_json(data)


def equal_revisions(left: Object, right: Object) -> bool:
    return go_json(left.get("data")) == go_json(right.get("data"))


def revision_number(revision: Object) -> int:
    number = revision.get("revision")
    return number if isinstance(number, int) and not isinstance(number, bool) else 0


def sort_revisions(revisions: list[Object]) -> list[Object]:
    """By revision number, then creation time, then name (history.SortControllerRevisions)."""

    def key(revision: Object) -> tuple[int, float, str]:
        created = meta(revision).get("creationTimestamp")
        try:
            stamp = parse_rfc3339(created).timestamp() if isinstance(created, str) else 0.0
        except ValueError:
            stamp = 0.0
        return (revision_number(revision), stamp, str(meta(revision).get("name", "")))

    return sorted(revisions, key=key)


def next_revision_number(revisions: list[Object]) -> int:
    return max((revision_number(r) for r in revisions), default=0) + 1


def apply_revision(owner: Object, revision: Object) -> Object:
    """The owner as it was at `revision`: its template replaced by the revision's."""
    restored = copy.deepcopy(owner)
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    restored.setdefault("spec", {})["template"] = template
    return restored


# -- through the API -----------------------------------------------------------------------


async def claim_revisions(
    client: ApiClient,
    owner: Object,
    owner_resource: Resource,
    kind: str,
    candidates: Iterable[Object],
) -> list[Object]:
    """The revisions `owner` controls among `candidates` (its namespace's), after adopting
    the orphans its selector matches and releasing those it no longer matches."""
    selector = (owner.get("spec") or {}).get("selector")
    manager = ControllerRefManager(
        client,
        CONTROLLERREVISIONS,
        owner,
        controller_reference(owner, "apps/v1", kind),
        recheck_owner(client, owner_resource, owner),
    )
    return await manager.claim(
        list(candidates), lambda r: selector_matches(selector, meta(r).get("labels"))
    )


async def create_revision(client: ApiClient, revision: Object) -> Object:
    """Store `revision`, or return the stored one of its name when that holds the same
    data. A name already holding other data (a hash collision) raises the 409."""
    name = str(meta(revision)["name"])
    namespace = str(meta(revision).get("namespace", ""))
    try:
        return await client.create(CONTROLLERREVISIONS, revision, namespace)
    except StatusError as error:
        if error.code != 409:
            raise
        existing = await client.get(CONTROLLERREVISIONS, name, namespace)
        if same_data(existing, revision.get("data")):
            return existing
        raise


async def delete_revisions(client: ApiClient, revisions: Iterable[Object]) -> None:
    """Delete each revision; one already gone is fine."""
    for revision in revisions:
        try:
            await client.delete(
                CONTROLLERREVISIONS, str(meta(revision)["name"]), str(meta(revision)["namespace"])
            )
        except StatusError as error:
            if error.code != 404:
                raise
