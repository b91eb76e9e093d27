"""Request bodies in, responses out: the media types the API speaks.

Bodies arrive as JSON, YAML or the Kubernetes protobuf envelope (kubectl 1.32's typed
clients); patches name their flavour in the Content-Type. Responses are JSON, either the
object itself or, when the client asks for `as=Table`, a meta.k8s.io/v1 Table.
"""

from __future__ import annotations

import functools
from enum import Enum
from typing import Any

import orjson
import yaml

from timonel.api import errors
from timonel.api.objects import Object

MAX_BODY_BYTES = 3 * 1024 * 1024

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"


class PatchType(Enum):
    JSON = "application/json-patch+json"
    MERGE = "application/merge-patch+json"
    STRATEGIC = "application/strategic-merge-patch+json"
    APPLY = "application/apply-patch+yaml"


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _yaml_loader() -> type[yaml.SafeLoader]:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def decode_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise errors.bad_request(f"error decoding JSON: {exc}") from None


def decode_yaml(body: bytes) -> Any:
    try:
        return yaml.load(body, Loader=_yaml_loader())
    except yaml.YAMLError as exc:
        raise errors.bad_request(
            f"error converting YAML to JSON: {exc}".replace("\n", " ")
        ) from None


def decode_object(body: bytes, content_type: str | None) -> Object:
    """A full object from a create or update body."""
    kind = media_type(content_type)
    if not body.strip():
        raise errors.bad_request("the request body is empty")
    if kind in (JSON, "", "*/*"):
        value = decode_json(body)
    elif kind in (YAML, "application/x-yaml", "text/yaml"):
        value = decode_yaml(body)
    elif kind == PROTOBUF:
        from timonel.apiserver import protobuf

        value = protobuf.decode(body)
    else:
        raise errors.unsupported_media_type(kind)
    if not isinstance(value, dict):
        raise errors.bad_request(
            "the body of the request was not a valid object: expected a JSON or YAML object"
        )
    return value


def decode_patch(body: bytes, content_type: str | None) -> tuple[PatchType, Any]:
    kind = media_type(content_type)
    try:
        patch_type = PatchType(kind)
    except ValueError:
        raise errors.unsupported_media_type(kind) from None
    if patch_type is PatchType.APPLY:
        value = decode_yaml(body)
        if not isinstance(value, dict):
            raise errors.bad_request(
                "error decoding YAML: the apply configuration must be an object"
            )
        return patch_type, value
    value = decode_json(body)
    if patch_type is PatchType.JSON and not isinstance(value, list):
        raise errors.bad_request(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    if patch_type is not PatchType.JSON and not isinstance(value, dict):
        raise errors.bad_request(
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )
    return patch_type, value


def wants_table(accept: str | None) -> bool:
    """True when the client prefers a Table (kubectl get's Accept lists it first)."""
    if not accept:
        return False
    first = accept.split(",", 1)[0]
    return "as=Table" in first and "g=meta.k8s.io" in first


def check_acceptable(accept: str | None) -> None:
    """406 when the client accepts nothing we can produce (JSON, YAML or a Table)."""
    if accept and not _acceptable(accept):
        raise errors.not_acceptable(accept)


@functools.lru_cache(maxsize=256)
def _acceptable(accept: str) -> bool:
    # Clients send the same few Accept headers over and over.
    for part in accept.split(","):
        kind = media_type(part)
        if kind in (JSON, "*/*", "application/*", PROTOBUF, YAML, "") or kind.startswith(
            "application/json"
        ):
            return True
    return False


def encode(value: Any) -> bytes:
    return orjson.dumps(value)


def yaml_response_wanted(accept: str | None) -> bool:
    return bool(accept) and media_type(accept.split(",", 1)[0] if accept else "") == YAML


def encode_yaml(value: Any) -> bytes:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(value, Dumper=dumper, default_flow_style=False, sort_keys=True).encode()
