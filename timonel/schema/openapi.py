"""The OpenAPI v3 documents kube-apiserver publishes under /openapi/v3, built from the 1.32 definitions.

kubectl reads them before `apply`, `create`, `edit` and `replace` (a PATCH operation that
declares a `fieldValidation` parameter means the server validates fields itself) and for
`explain` (component schemas with `x-kubernetes-group-version-kind`, `description`,
`properties`, types and `required`). The root document lists one URL per group-version,
`/openapi/v3/apis/apps/v1?hash=<H>`, which kubectl fetches verbatim; H is the SHA-512 of
that group-version document, upper-case hex, as kube-apiserver computes it.

Documents are pure data built from a group-version's resources; `OpenAPIV3` builds them
on first request and keeps only their encoded bytes (they change when CRDs change).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from timonel.kinds.base import ALL_VERBS
from timonel.schema import openapiv2
from timonel.schema.definitions import (
    Definitions,
    SchemaNode,
    kubernetes_definitions,
    ref_name,
)

__all__ = [
    "OpenAPIV3",
    "ResourceDescriptor",
    "document_hash",
    "encode_document",
    "group_version_document",
    "group_version_path",
    "root_document",
]

OPENAPI_VERSION: Final = "3.0.0"
KUBERNETES_VERSION: Final = "v1.32.0"
_SCHEMAS: Final = "#/components/schemas/"
_META: Final = "io.k8s.apimachinery.pkg.apis.meta.v1."
_SCALE: Final = "io.k8s.api.autoscaling.v1.Scale"
_ALWAYS_INCLUDED: Final = (
    _META + "APIResourceList",
    _META + "DeleteOptions",
    _META + "Patch",
    _META + "Status",
    _META + "WatchEvent",
)
PATCH_CONTENT_TYPES: Final = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)
_RESPONSE_CONTENT_TYPES: Final = (
    "application/json",
    "application/vnd.kubernetes.protobuf",
    "application/yaml",
)

_QUANTITY_DESCRIPTION: Final = (
    "Quantity is a fixed-point representation of a number. It provides convenient "
    "marshaling/unmarshaling in JSON and YAML, in addition to String() and AsInt64() accessors."
    "\n\nThe serialization format is:\n\n<quantity>        ::= <signedNumber><suffix>\n  (Note that "
    '<suffix> may be empty, from the "" case in <decimalSI>.)\n<digit>           ::= 0 | 1 | ... | 9 '
    "<digits>          ::= <digit> | <digit><digits> <number>          ::= <digits> | "
    '<digits>.<digits> | <digits>. | .<digits> <sign>            ::= "+" | "-" <signedNumber>    '
    "::= <number> | <sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI> "
    "<binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n  (International System of units; See: "
    'http://physics.nist.gov/cuu/Units/binary.html)\n<decimalSI>       ::= m | "" | k | M | G | T | '
    "P | E\n  (Note that 1024 = 1Ki but 1000 = 1k; I didn't choose the capitalization.)\n"
    '<decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>\n\nNo matter which of the three '
    "exponent forms is used, no quantity may represent a number greater than 2^63-1 in magnitude, "
    "nor may it have more than 3 decimal places. Numbers larger or more precise will be capped or "
    "rounded up. (E.g.: 0.1m will rounded up to 1m.) This may be extended in the future if we "
    "require larger or smaller quantities.\n\nWhen a Quantity is parsed from a string, it will "
    "remember the type of suffix it had, and will use the same type again when it is serialized."
    '\n\nBefore serializing, Quantity will be put in "canonical form". This means that '
    "Exponent/suffix will be adjusted up or down (with a corresponding increase or decrease in "
    "Mantissa) such that:\n  a. No precision is lost\n  b. No fractional digits will be emitted\n"
    "  c. The exponent (or suffix) is as large as possible.\nThe sign will be omitted unless the "
    'number is negative.\n\nExamples:\n  1.5 will be serialized as "1500m"\n  1.5Gi will be '
    'serialized as "1536Mi"\n\nNote that the quantity will NEVER be internally represented by a '
    "floating point number. That is the whole point of this exercise.\n\nNon-canonical values will "
    "still parse as long as they are well formed, but will be re-emitted in their canonical form. "
    "(So always use canonical form, or don't diff.)\n\nThis format is intended to make it difficult "
    "to use these numbers without writing some sort of special handling code in the hopes that "
    "that will cause implementors to also use a fixed point implementation."
)
# Descriptions the published definitions lost for the two one-of types.
_SPECIAL_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in JSON "
        "or YAML marshalling and unmarshalling, it produces or consumes the inner type.  This "
        "allows you to have, for example, a JSON field that can accept a name or number.",
        "format": "int-or-string",
        "oneOf": [{"type": "integer"}, {"type": "string"}],
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": _QUANTITY_DESCRIPTION,
        "oneOf": [{"type": "string"}, {"type": "number"}],
    },
}


class ResourceDescriptor(Protocol):
    """What a document needs to know of a served resource (a kind's Strategy has it all)."""

    @property
    def group(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def plural(self) -> str: ...
    @property
    def namespaced(self) -> bool: ...
    @property
    def has_status(self) -> bool: ...
    @property
    def scale(self) -> object | None: ...


SchemaLookup = Callable[[ResourceDescriptor], "SchemaNode | None"]


def group_version_path(group: str, version: str) -> str:
    """`api/v1` for the core group, `apis/<group>/<version>` otherwise."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _builtin_schema(resource: ResourceDescriptor) -> SchemaNode | None:
    return kubernetes_definitions().for_kind(resource.group, resource.version, resource.kind)


# -- components ---------------------------------------------------------------------------------


def _convert(raw: Mapping[str, Any], refs: list[str]) -> dict[str, Any]:
    """A published JSON-schema definition, as an OpenAPI 3.0 schema (refs collected)."""
    out: dict[str, Any] = {}
    ref = raw.get("$ref")
    for key, value in raw.items():
        if key == "$ref":
            continue
        if key == "type":
            types = [t for t in (value if isinstance(value, list) else [value]) if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
            elif types:
                out["type"] = types
        elif key == "properties" and isinstance(value, dict):
            out["properties"] = {name: _convert(prop, refs) for name, prop in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = _convert(value, refs)
        elif key in ("allOf", "anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_convert(option, refs) for option in value]
        else:
            out[key] = value
    if isinstance(ref, str):
        target = ref_name(ref)
        refs.append(target)
        if not out:
            return {"$ref": _SCHEMAS + target}
        # A ref with siblings (description, patch strategy) is wrapped, as kube-openapi does,
        # so that OpenAPI 3.0 readers keep both.
        out["allOf"] = [{"$ref": _SCHEMAS + target}]
    return out


def _component(name: str, raw: Mapping[str, Any], refs: list[str]) -> dict[str, Any]:
    special = _SPECIAL_SCHEMAS.get(name)
    if special is not None:
        return dict(special)
    converted = _convert(raw, refs)
    properties = converted.get("properties")
    if isinstance(properties, dict) and "x-kubernetes-group-version-kind" in converted:
        for type_meta in ("apiVersion", "kind"):
            field = properties.get(type_meta)
            if isinstance(field, dict):
                field.pop("enum", None)  # added by the JSON-schema conversion, not by Kubernetes
    return converted


def _list_component(kind: str, item_ref: str, group: str, version: str) -> dict[str, Any]:
    """The `<Kind>List` schema of a custom resource."""
    plural_doc = (
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"
    )
    return {
        "description": f"{kind}List is a list of {kind}",
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this "
                "representation of an object. Servers should convert recognized "
                "schemas to the latest internal value, and may reject unrecognized "
                f"values. More info: {plural_doc}#resources",
                "type": "string",
            },
            "items": {
                "description": f"List of {kind.lower()}s. More info: {plural_doc}",
                "items": {"$ref": _SCHEMAS + item_ref},
                "type": "array",
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this "
                "object represents. Servers may infer this from the endpoint the client "
                "submits requests to. Cannot be updated. In CamelCase. More info: "
                f"{plural_doc}#types-kinds",
                "type": "string",
            },
            "metadata": {
                "allOf": [{"$ref": _SCHEMAS + _META + "ListMeta"}],
                "description": f"Standard list metadata. More info: {plural_doc}#metadata",
            },
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [
            {"group": group, "kind": f"{kind}List", "version": version}
        ],
    }


def _components(
    roots: list[tuple[Definitions, str]], extra: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    """Every definition reachable from `roots` and `extra` (ready-made schemas), plus the
    meta types every group-version document carries."""
    base = kubernetes_definitions()
    schemas: dict[str, Any] = dict(extra)
    pending: list[tuple[Definitions, str]] = [*roots, *((base, name) for name in _ALWAYS_INCLUDED)]
    for _name, schema in extra:
        refs: list[str] = []
        _convert(schema, refs)
        pending.extend((base, ref) for ref in refs)
    while pending:
        defs, name = pending.pop()
        if name in schemas:
            continue
        raw = defs.lookup(name)
        if raw is None:
            continue
        refs = []
        schemas[name] = _component(name, raw, refs)
        pending.extend((defs, ref) for ref in refs if ref not in schemas)
    return dict(sorted(schemas.items()))


# -- paths ---------------------------------------------------------------------------------------


def _param(
    name: str, location: str, type_: str, description: str, *, required: bool = False
) -> dict[str, Any]:
    param: dict[str, Any] = {
        "description": description,
        "in": location,
        "name": name,
        "schema": {"type": type_, "uniqueItems": True},
    }
    if required:
        param["required"] = True
    return param


_PRETTY: Final = _param(
    "pretty",
    "query",
    "string",
    "If 'true', then the output is pretty printed. "
    "Defaults to 'false' unless the user-agent indicates a browser or command-line "
    "HTTP tool (curl and wget).",
)
_NAMESPACE: Final = _param(
    "namespace",
    "path",
    "string",
    "object name and auth scope, such as for teams and projects",
    required=True,
)
_DRY_RUN: Final = _param(
    "dryRun",
    "query",
    "string",
    "When present, indicates that modifications "
    "should not be persisted. An invalid or unrecognized dryRun directive will "
    "result in an error response and no further processing of the request. "
    "Valid values are: - All: all dry run stages will be processed",
)
_FIELD_MANAGER: Final = _param(
    "fieldManager",
    "query",
    "string",
    "fieldManager is a name "
    "associated with the actor or entity that is making these changes. "
    "The value must be less than or 128 characters long, and only contain "
    "printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint.",
)
_PATCH_FIELD_MANAGER: Final = _param(
    "fieldManager",
    "query",
    "string",
    "fieldManager is a name "
    "associated with the actor or entity that is making these "
    "changes. The value must be less than or 128 characters long, "
    "and only contain printable characters, as defined by "
    "https://golang.org/pkg/unicode/#IsPrint. This field is required "
    "for apply requests (application/apply-patch) but optional for "
    "non-apply patch types (JsonPatch, MergePatch, StrategicMergePatch).",
)
_FIELD_VALIDATION: Final = _param(
    "fieldValidation",
    "query",
    "string",
    "fieldValidation instructs "
    "the server on how to handle objects in the request (POST/PUT/PATCH) "
    "containing unknown or duplicate fields. Valid values are: - Ignore: "
    "This will ignore any unknown fields that are silently dropped from "
    "the object, and will ignore all but the last duplicate field that "
    "the decoder encounters. This is the default behavior prior to v1.23. "
    "- Warn: This will send a warning via the standard warning response "
    "header for each unknown field that is dropped from the object, and "
    "for each duplicate field that is encountered. The request will still "
    "succeed if there are no other errors, and will only persist the last "
    "of any duplicate fields. This is the default in v1.23+ - Strict: "
    "This will fail the request with a BadRequest error if any unknown "
    "fields would be dropped from the object, or if any duplicate fields "
    "are present. The error returned from the server will contain all "
    "unknown and duplicate fields encountered.",
)
_FORCE: Final = _param(
    "force",
    "query",
    "boolean",
    'Force is going to "force" Apply requests. It '
    "means user will re-acquire conflicting fields owned by other people. Force "
    "flag must be unset for non-apply patch requests.",
)
_DELETE_PARAMS: Final = (
    _DRY_RUN,
    _param(
        "gracePeriodSeconds",
        "query",
        "integer",
        "The duration in seconds before the object "
        "should be deleted. Value must be non-negative integer. The value zero indicates delete "
        "immediately. If this value is nil, the default grace period for the specified type will "
        "be used. Defaults to a per object value if not specified. zero means delete immediately.",
    ),
    _param(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        "query",
        "boolean",
        "if set to true, it "
        "will trigger an unsafe deletion of the resource in case the normal deletion flow fails "
        "with a corrupt object error. A resource is considered corrupt if it can not be retrieved "
        "from the underlying storage successfully because of a) its data can not be transformed "
        "e.g. decryption failure, or b) it fails to decode into an object. NOTE: unsafe deletion "
        "ignores finalizer constraints, skips precondition checks, and removes the object from "
        "the storage. WARNING: This may potentially break the cluster if the workload associated "
        "with the resource being unsafe-deleted relies on normal deletion flow. Use only if you "
        "REALLY know what you are doing. The default value is false, and the user must opt in "
        "to enable it",
    ),
    _param(
        "orphanDependents",
        "query",
        "boolean",
        "Deprecated: please use the PropagationPolicy, "
        "this field will be deprecated in 1.7. Should the dependent objects be orphaned. If "
        'true/false, the "orphan" finalizer will be added to/removed from the object\'s '
        "finalizers list. Either this field or PropagationPolicy may be set, but not both.",
    ),
    _param(
        "propagationPolicy",
        "query",
        "string",
        "Whether and how garbage collection will be "
        "performed. Either this field or OrphanDependents may be set, but not both. The default "
        "policy is decided by the existing finalizer set in the metadata.finalizers and the "
        "resource-specific default policy. Acceptable values are: 'Orphan' - orphan the "
        "dependents; 'Background' - allow the garbage collector to delete the dependents in the "
        "background; 'Foreground' - a cascading policy that deletes all dependents in the "
        "foreground.",
    ),
)
_RESOURCE_VERSION_DOC: Final = (
    "See https://kubernetes.io/docs/reference/using-api/api-concepts/"
    "#resource-versions for details.\n\nDefaults to unset"
)
_LIST_PARAMS: Final = (
    _param(
        "allowWatchBookmarks",
        "query",
        "boolean",
        "allowWatchBookmarks requests watch events "
        'with type "BOOKMARK". Servers that do not implement bookmarks may ignore this flag and '
        "bookmarks are sent at the server's discretion. Clients should not assume bookmarks are "
        "returned at any specific interval, nor may they assume the server will send any "
        "BOOKMARK event during a session. If this is not a watch, this field is ignored.",
    ),
    _param(
        "continue",
        "query",
        "string",
        "The continue option should be set when retrieving more "
        "results from the server. Since this value is server defined, clients may only use the "
        "continue value from a previous query result with identical query parameters (except "
        "for the value of continue) and the server may reject a continue value it does not "
        "recognize.",
    ),
    _param(
        "fieldSelector",
        "query",
        "string",
        "A selector to restrict the list of returned objects "
        "by their fields. Defaults to everything.",
    ),
    _param(
        "labelSelector",
        "query",
        "string",
        "A selector to restrict the list of returned objects "
        "by their labels. Defaults to everything.",
    ),
    _param(
        "limit",
        "query",
        "integer",
        "limit is a maximum number of responses to return for a "
        "list call. If more items exist, the server will set the `continue` field on the list "
        "metadata to a value that can be used with the same initial query to retrieve the next "
        "set of results.",
    ),
    _param(
        "resourceVersion",
        "query",
        "string",
        "resourceVersion sets a constraint on what "
        "resource versions a request may be served from. " + _RESOURCE_VERSION_DOC,
    ),
    _param(
        "resourceVersionMatch",
        "query",
        "string",
        "resourceVersionMatch determines how "
        "resourceVersion is applied to list calls. It is highly recommended that "
        "resourceVersionMatch be set for list calls where resourceVersion is set "
        + _RESOURCE_VERSION_DOC,
    ),
    _param(
        "sendInitialEvents",
        "query",
        "boolean",
        "`sendInitialEvents=true` may be set together "
        "with `watch=true`. In that case, the watch stream will begin with synthetic events to "
        "produce the current state of objects in the collection. Once all such events have been "
        'sent, a synthetic "Bookmark" event  will be sent.',
    ),
    _param(
        "timeoutSeconds",
        "query",
        "integer",
        "Timeout for the list/watch call. This limits the "
        "duration of the call, regardless of any activity or inactivity.",
    ),
    _param(
        "watch",
        "query",
        "boolean",
        "Watch for changes to the described resources and return "
        "them as a stream of add, update, and remove notifications. Specify resourceVersion.",
    ),
)
_WRITE_PARAMS: Final = (_DRY_RUN, _FIELD_MANAGER, _FIELD_VALIDATION)
_PATCH_PARAMS: Final = (_DRY_RUN, _PATCH_FIELD_MANAGER, _FIELD_VALIDATION, _FORCE)


def _content(
    schema_name: str | None, types: Iterable[str] = _RESPONSE_CONTENT_TYPES
) -> dict[str, Any]:
    schema = {"$ref": _SCHEMAS + schema_name} if schema_name else {}
    return {content_type: {"schema": schema} for content_type in types}


def _responses(schema_name: str | None, *codes: tuple[str, str]) -> dict[str, Any]:
    return {code: {"content": _content(schema_name), "description": text} for code, text in codes}


_OK: Final = ("200", "OK")
_CREATED: Final = ("201", "Created")
_ACCEPTED: Final = ("202", "Accepted")


def _operation_group(group: str) -> str:
    """`Apps`, `RbacAuthorization`, `Core` (for the empty group), as in operationIds."""
    if not group:
        return "Core"
    words = group.removesuffix(".k8s.io").replace("-", ".").split(".")
    return "".join(word[:1].upper() + word[1:] for word in words if word)


def _tag(group: str, version: str) -> str:
    operation_group = _operation_group(group)
    return f"{operation_group[:1].lower()}{operation_group[1:]}_{version}"


@dataclass(frozen=True)
class _Operations:
    """Builds the operations of one kind's paths: all carry its group-version-kind
    (`x-kubernetes-group-version-kind`, which kubectl matches on) and its tag."""

    gvk: dict[str, str]
    tag: str

    def __call__(
        self,
        *,
        action: str,
        operation_id: str,
        description: str,
        parameters: Iterable[dict[str, Any]] = (),
        request: tuple[str, Iterable[str]] | None = None,
        responses: dict[str, Any],
    ) -> dict[str, Any]:
        operation: dict[str, Any] = {"description": description, "operationId": operation_id}
        params = list(parameters)
        if params:
            operation["parameters"] = params
        if request is not None:
            schema_name, content_types = request
            operation["requestBody"] = {
                "content": _content(schema_name, content_types),
                "required": True,
            }
        operation["responses"] = responses
        operation["tags"] = [self.tag]
        operation["x-kubernetes-action"] = action
        operation["x-kubernetes-group-version-kind"] = self.gvk
        return operation


def _resource_paths(
    resource: ResourceDescriptor, schema_name: str | None, list_name: str | None
) -> dict[str, Any]:
    group, version, kind, plural = resource.group, resource.version, resource.kind, resource.plural
    prefix = "/" + group_version_path(group, version)
    scope = "Namespaced" if resource.namespaced else ""
    collection = (
        f"{prefix}/namespaces/{{namespace}}/{plural}"
        if resource.namespaced
        else f"{prefix}/{plural}"
    )
    item = collection + "/{name}"
    op_group = _operation_group(group) + version[:1].upper() + version[1:]
    operation = _Operations(
        {"group": group, "kind": kind, "version": version}, _tag(group, version)
    )
    verbs = set(getattr(resource, "verbs", ALL_VERBS))
    scope_params = [_NAMESPACE] if resource.namespaced else []
    name_param = _param("name", "path", "string", f"name of the {kind}", required=True)
    paths: dict[str, Any] = {}

    collection_ops: dict[str, Any] = {}
    if "deletecollection" in verbs:
        collection_ops["delete"] = operation(
            action="deletecollection",
            operation_id=f"delete{op_group}Collection{scope}{kind}",
            description=f"delete collection of {kind}",
            parameters=[*_DELETE_PARAMS, *_LIST_PARAMS],
            request=(_META + "DeleteOptions", ("application/json",)),
            responses=_responses(_META + "Status", _OK),
        )
    if "list" in verbs:
        collection_ops["get"] = operation(
            action="list",
            operation_id=f"list{op_group}{scope}{kind}",
            description=f"list or watch objects of kind {kind}",
            parameters=_LIST_PARAMS,
            responses=_responses(list_name, _OK),
        )
    if "create" in verbs:
        collection_ops["post"] = operation(
            action="post",
            operation_id=f"create{op_group}{scope}{kind}",
            description=f"create a {kind}",
            parameters=_WRITE_PARAMS,
            request=(schema_name or "", ("application/json",)) if schema_name else None,
            responses=_responses(schema_name, _OK, _CREATED, _ACCEPTED),
        )
    if collection_ops:
        paths[collection] = {**collection_ops, "parameters": [*scope_params, _PRETTY]}

    item_ops: dict[str, Any] = {}
    if "delete" in verbs:
        item_ops["delete"] = operation(
            action="delete",
            operation_id=f"delete{op_group}{scope}{kind}",
            description=f"delete a {kind}",
            parameters=_DELETE_PARAMS,
            request=(_META + "DeleteOptions", ("application/json",)),
            responses=_responses(_META + "Status", _OK, _ACCEPTED),
        )
    item_ops.update(
        _read_write_ops(
            verbs, f"{op_group}{scope}{kind}", f"the specified {kind}", schema_name, operation
        )
    )
    subresources = [("", item_ops)]
    if resource.has_status:
        status_ops = _read_write_ops(
            verbs,
            f"{op_group}{scope}{kind}Status",
            f"status of the specified {kind}",
            schema_name,
            operation,
        )
        subresources.append(("/status", status_ops))
    if resource.scale is not None:
        scale = _Operations(
            {"group": "autoscaling", "kind": "Scale", "version": "v1"}, operation.tag
        )
        scale_ops = _read_write_ops(
            verbs, f"{op_group}{scope}{kind}Scale", f"scale of the specified {kind}", _SCALE, scale
        )
        subresources.append(("/scale", scale_ops))
    for suffix, ops in subresources:
        if ops:
            paths[item + suffix] = {**ops, "parameters": [name_param, *scope_params, _PRETTY]}

    if resource.namespaced and "list" in verbs:
        paths[f"{prefix}/{plural}"] = {
            "get": operation(
                action="list",
                operation_id=f"list{op_group}{kind}ForAllNamespaces",
                description=f"list or watch objects of kind {kind}",
                responses=_responses(list_name, _OK),
            ),
            "parameters": [*_LIST_PARAMS, _PRETTY],
        }
    return paths


def _read_write_ops(
    verbs: set[str], name: str, what: str, schema_name: str | None, operation: _Operations
) -> dict[str, Any]:
    """get, patch and put of an object or one of its subresources."""
    ops: dict[str, Any] = {}
    if "get" in verbs:
        ops["get"] = operation(
            action="get",
            operation_id=f"read{name}",
            description=f"read {what}",
            responses=_responses(schema_name, _OK),
        )
    if "patch" in verbs:
        ops["patch"] = operation(
            action="patch",
            operation_id=f"patch{name}",
            description=f"partially update {what}",
            parameters=_PATCH_PARAMS,
            request=(_META + "Patch", PATCH_CONTENT_TYPES),
            responses=_responses(schema_name, _OK, _CREATED),
        )
    if "update" in verbs:
        ops["put"] = operation(
            action="put",
            operation_id=f"replace{name}",
            description=f"replace {what}",
            parameters=_WRITE_PARAMS,
            request=(schema_name, ("application/json",)) if schema_name else None,
            responses=_responses(schema_name, _OK, _CREATED),
        )
    return ops


# -- documents -------------------------------------------------------------------------------------


def group_version_document(
    group: str,
    version: str,
    resources: Iterable[ResourceDescriptor],
    *,
    schema_for: SchemaLookup | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.0 document of one group-version: paths for each resource (with its
    status and scale subresources) and every schema they reference.

    `schema_for` gives a resource's root schema: a CRD's (`schema_from_openapi`) or, by
    default, the built-in definition of its kind."""
    lookup = schema_for or _builtin_schema
    roots: list[tuple[Definitions, str]] = []
    extra: list[tuple[str, dict[str, Any]]] = []
    paths: dict[str, Any] = {}
    served = [r for r in resources if r.group == group and r.version == version]
    for resource in sorted(served, key=lambda r: r.plural):
        node = lookup(resource)
        schema_name = node.name if node is not None and node.name else None
        list_name: str | None = None
        if node is not None and schema_name:
            defs = node.definitions
            roots.append((defs, schema_name))
            list_name = defs.name_for_kind(group, version, resource.kind + "List")
            if list_name is None and defs.structural:
                list_name = schema_name + "List"
                extra.append(
                    (list_name, _list_component(resource.kind, schema_name, group, version))
                )
            if list_name is not None:
                roots.append((defs, list_name))
        if resource.scale is not None:
            roots.append((kubernetes_definitions(), _SCALE))
        paths.update(_resource_paths(resource, schema_name, list_name))
    return {
        "components": {"schemas": _components(roots, extra)},
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "openapi": OPENAPI_VERSION,
        "paths": dict(sorted(paths.items())),
    }


def encode_document(document: Mapping[str, Any]) -> bytes:
    """Compact JSON with sorted keys, so equal documents have equal bytes (and hashes)."""
    return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


def document_hash(encoded: bytes) -> str:
    """The `hash` kube-apiserver puts in serverRelativeURL: SHA-512, upper-case hex."""
    return hashlib.sha512(encoded).hexdigest().upper()


def root_document(hashes: Mapping[tuple[str, str], str]) -> dict[str, Any]:
    """The /openapi/v3 index: one serverRelativeURL per (group, version) and its hash."""
    paths = {
        group_version_path(group, version): {
            "serverRelativeURL": f"/openapi/v3/{group_version_path(group, version)}?hash={digest}"
        }
        for (group, version), digest in hashes.items()
    }
    return {"paths": dict(sorted(paths.items()))}


class OpenAPIV3:
    """Serves /openapi/v3: each group-version document built on first request and kept
    encoded; `invalidate` drops what a CRD change makes stale.

    `resources` is called for the current set of served resources (the registry);
    `schema_for` as in `group_version_document`."""

    def __init__(
        self,
        resources: Callable[[], Iterable[ResourceDescriptor]],
        *,
        schema_for: SchemaLookup | None = None,
    ) -> None:
        self._resources = resources
        self._schema_for = schema_for
        self._documents: dict[tuple[str, str], tuple[bytes, str]] = {}
        self._root: tuple[bytes, str] | None = None
        self._swagger: tuple[bytes, bytes, str] | None = None
        self._lock = threading.Lock()

    def invalidate(self, group: str | None = None, version: str | None = None) -> None:
        """Forget the documents of `group` (one `version` of it, or all), or of everything."""
        with self._lock:
            for key in list(self._documents):
                if group is None or (key[0] == group and version in (None, key[1])):
                    del self._documents[key]
            self._root = None
            self._swagger = None

    def _group_versions(self) -> dict[tuple[str, str], list[ResourceDescriptor]]:
        found: dict[tuple[str, str], list[ResourceDescriptor]] = {}
        for resource in self._resources():
            found.setdefault((resource.group, resource.version), []).append(resource)
        return found

    def _build(
        self, group: str, version: str, resources: list[ResourceDescriptor]
    ) -> tuple[bytes, str]:
        encoded = encode_document(
            group_version_document(group, version, resources, schema_for=self._schema_for)
        )
        return encoded, document_hash(encoded)

    def _all_documents(self) -> dict[tuple[str, str], tuple[bytes, str]]:
        """Every served group-version's document (built where missing); hold the lock."""
        served: dict[tuple[str, str], tuple[bytes, str]] = {}
        for key, resources in self._group_versions().items():
            if key not in self._documents:
                self._documents[key] = self._build(*key, resources)
            served[key] = self._documents[key]
        return served

    def root(self) -> tuple[bytes, str]:
        """The root document and its ETag."""
        with self._lock:
            if self._root is None:
                hashes = {key: tag for key, (_, tag) in self._all_documents().items()}
                encoded = encode_document(root_document(hashes))
                self._root = (encoded, document_hash(encoded))
            return self._root

    def document(self, path: str) -> tuple[bytes, str] | None:
        """The document at `path` (`api/v1`, `apis/apps/v1`) and its hash, None if not served."""
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "api":
            key = ("", parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            key = (parts[1], parts[2])
        else:
            return None
        with self._lock:
            cached = self._documents.get(key)
            if cached is not None:
                return cached
            resources = self._group_versions().get(key)
            if not resources:
                return None
            built = self._documents[key] = self._build(*key, resources)
            return built

    def swagger(self) -> tuple[bytes, bytes, str]:
        """The /openapi/v2 document, as JSON and as gnostic protobuf, and its hash (the
        Swagger 2.0 form of every group-version document, so both versions agree)."""
        with self._lock:
            if self._swagger is None:
                documents = [
                    orjson.loads(encoded)
                    for _, (encoded, _) in sorted(self._all_documents().items())
                ]
                swagger = openapiv2.swagger_document(documents, KUBERNETES_VERSION)
                encoded = encode_document(swagger)
                self._swagger = (
                    encoded,
                    openapiv2.encode_protobuf(swagger),
                    document_hash(encoded),
                )
            return self._swagger
