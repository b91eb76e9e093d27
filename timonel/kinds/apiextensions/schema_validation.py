"""Static checks of a CRD version's `openAPIV3Schema`, worded as apiextensions-apiserver
words them (validation.go's ValidateCustomResourceDefinitionOpenAPISchema and the
structural schema rules of pkg/apiserver/schema/validation.go).

A structural schema gives every field a type outside the logical junctors (allOf, anyOf,
oneOf, not); the junctors may only add value validations. CEL rules are checked for form,
not compiled.
"""

from __future__ import annotations

import re
from typing import Any

from timonel.api.errors import FieldError, forbidden, invalid_value, not_supported, required

OPENAPI_TYPES = ("array", "boolean", "integer", "number", "object", "string")
VALIDATION_REASONS = (
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
)
_META_FIELDS = ("metadata", "kind", "apiVersion")
_JUNCTORS = ("allOf", "anyOf", "oneOf")
# What the root of a schema may hold when /status is served (the status schema is
# extracted as properties["status"]). Go field names, as the error message lists them.
_ROOT_FIELDS_WITH_STATUS = {
    "description": "Description",
    "type": "Type",
    "format": "Format",
    "title": "Title",
    "maximum": "Maximum",
    "exclusiveMaximum": "ExclusiveMaximum",
    "minimum": "Minimum",
    "exclusiveMinimum": "ExclusiveMinimum",
    "maxLength": "MaxLength",
    "minLength": "MinLength",
    "pattern": "Pattern",
    "maxItems": "MaxItems",
    "minItems": "MinItems",
    "uniqueItems": "UniqueItems",
    "multipleOf": "MultipleOf",
    "required": "Required",
    "items": "Items",
    "properties": "Properties",
    "externalDocs": "ExternalDocs",
    "example": "Example",
    "x-kubernetes-preserve-unknown-fields": "XPreserveUnknownFields",
    "x-kubernetes-validations": "XValidations",
}
_ROOT_FIELDS_MESSAGE = (
    "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum "
    "MaxLength MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items "
    "Properties ExternalDocs Example XPreserveUnknownFields XValidations] fields are allowed "
    "at the root of the schema if the status subresource is enabled"
)


def _key(path: str, key: str) -> str:
    return f"{path}[{key}]"


def validate_openapi_schema(
    schema: dict[str, Any], path: str, *, status_enabled: bool
) -> list[FieldError]:
    """Every check of one version's schema; `path` ends in "openAPIV3Schema"'s parent."""
    errors: list[FieldError] = []
    root = f"{path}.openAPIV3Schema"
    if status_enabled:
        for name, value in schema.items():
            if value in (None, "", 0, False, [], {}):
                continue
            if name == "type":
                if value != "object":
                    errors.append(
                        invalid_value(
                            f"{root}.type",
                            value,
                            'only "object" is allowed as the type at the root of the schema if the '
                            "status subresource is enabled",
                        )
                    )
                    break
                continue
            if name not in _ROOT_FIELDS_WITH_STATUS:
                errors.append(invalid_value(root, schema, _ROOT_FIELDS_MESSAGE))
                break
    if schema.get("nullable"):
        errors.append(forbidden(f"{root}.nullable", "nullable cannot be true at the root"))
    errors.extend(structural_errors(schema, root))
    errors.extend(
        _openapi_errors(schema, root, is_root=True, defaults_forbidden="", inside_meta=False)
    )
    return errors


# -- the OpenAPI v3 subset Kubernetes accepts ---------------------------------------------


def _openapi_errors(
    schema: Any, path: str, *, is_root: bool, defaults_forbidden: str, inside_meta: bool
) -> list[FieldError]:
    if not isinstance(schema, dict):
        return []
    errors = _standard_errors(schema, path, defaults_forbidden, inside_meta)
    if schema.get("uniqueItems"):
        errors.append(
            forbidden(
                f"{path}.uniqueItems",
                "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
            )
        )
    properties = schema.get("properties") or {}
    additional = schema.get("additionalProperties")
    if additional is not None:
        if properties and (additional is False or isinstance(additional, dict)):
            errors.append(
                forbidden(
                    f"{path}.additionalProperties",
                    "additionalProperties and properties are mutual exclusive",
                )
            )
        sub_forbidden = (
            "inside additionalProperties applying to object metadata"
            if inside_meta
            else defaults_forbidden
        )
        errors.extend(
            _openapi_errors(
                additional,
                f"{path}.additionalProperties",
                is_root=False,
                defaults_forbidden=sub_forbidden,
                inside_meta=inside_meta,
            )
        )
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    for name, prop in properties.items():
        sub_meta, sub_forbidden = inside_meta, defaults_forbidden
        if (is_root or embedded) and name in _META_FIELDS:
            sub_meta = True
            if is_root:
                sub_forbidden = f"in top-level {name}"
        errors.extend(
            _openapi_errors(
                prop,
                _key(f"{path}.properties", name),
                is_root=False,
                defaults_forbidden=sub_forbidden,
                inside_meta=sub_meta,
            )
        )
    errors.extend(
        _openapi_errors(
            schema.get("not"),
            f"{path}.not",
            is_root=False,
            defaults_forbidden=defaults_forbidden,
            inside_meta=inside_meta,
        )
    )
    for junctor in _JUNCTORS:
        for i, sub in enumerate(schema.get(junctor) or []):
            errors.extend(
                _openapi_errors(
                    sub,
                    f"{path}.{junctor}[{i}]",
                    is_root=False,
                    defaults_forbidden=defaults_forbidden,
                    inside_meta=inside_meta,
                )
            )
    items = schema.get("items")
    if isinstance(items, dict):
        errors.extend(
            _openapi_errors(
                items,
                f"{path}.items",
                is_root=False,
                defaults_forbidden=defaults_forbidden,
                inside_meta=inside_meta,
            )
        )
    errors.extend(_extension_errors(schema, path))
    errors.extend(_rule_errors(schema, path))
    return errors


def _standard_errors(
    schema: dict[str, Any], path: str, defaults_forbidden: str, inside_meta: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    kind = schema.get("type")
    if kind and kind not in OPENAPI_TYPES:
        errors.append(not_supported(f"{path}.type", kind, list(OPENAPI_TYPES)))
    if "default" in schema and defaults_forbidden:
        errors.append(forbidden(f"{path}.default", f"must not be set {defaults_forbidden}"))
    for name, message in (
        ("id", "id is not supported"),
        ("additionalItems", "additionalItems is not supported"),
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
    ):
        if schema.get(name):
            errors.append(forbidden(f"{path}.{name}", message))
    if kind == "null":
        errors.append(
            forbidden(f"{path}.type", "type cannot be set to null, use nullable as an alternative")
        )
    if isinstance(schema.get("items"), list) and schema["items"]:
        errors.append(forbidden(f"{path}.items", "items must be a schema object and not an array"))
    if inside_meta and schema.get("x-kubernetes-embedded-resource"):
        errors.append(
            forbidden(
                f"{path}.x-kubernetes-embedded-resource", "must not be used inside of resource meta"
            )
        )
    return errors


def _extension_errors(schema: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    kind = schema.get("type") or ""
    if schema.get("x-kubernetes-preserve-unknown-fields") is False:
        errors.append(
            invalid_value(
                f"{path}.x-kubernetes-preserve-unknown-fields", False, "must be true or undefined"
            )
        )
    map_type = schema.get("x-kubernetes-map-type")
    if map_type is not None:
        if kind != "object":
            detail = "must be object if x-kubernetes-map-type is specified"
            errors.append(
                invalid_value(f"{path}.type", kind, detail)
                if kind
                else required(f"{path}.type", detail)
            )
        if map_type not in ("atomic", "granular"):
            errors.append(
                not_supported(f"{path}.x-kubernetes-map-type", map_type, ["atomic", "granular"])
            )
    list_type = schema.get("x-kubernetes-list-type")
    items = schema.get("items") if isinstance(schema.get("items"), dict) else None
    if list_type is not None and kind != "array":
        detail = "must be array if x-kubernetes-list-type is specified"
        errors.append(
            invalid_value(f"{path}.type", kind, detail)
            if kind
            else required(f"{path}.type", detail)
        )
    elif list_type == "set" and items is not None:
        if items.get("type") == "array" and items.get("x-kubernetes-list-type") not in (
            None,
            "atomic",
        ):
            errors.append(
                invalid_value(
                    f"{path}.items.x-kubernetes-list-type",
                    items.get("x-kubernetes-list-type"),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                )
            )
        if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            errors.append(
                invalid_value(
                    f"{path}.items.x-kubernetes-map-type",
                    items.get("x-kubernetes-list-type"),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                )
            )
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errors.append(
            not_supported(f"{path}.x-kubernetes-list-type", list_type, ["atomic", "set", "map"])
        )
    map_keys = schema.get("x-kubernetes-list-map-keys") or []
    if map_keys:
        if list_type is None:
            errors.append(
                required(
                    f"{path}.x-kubernetes-list-type",
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
        elif list_type != "map":
            errors.append(
                invalid_value(
                    f"{path}.x-kubernetes-list-type",
                    list_type,
                    "must be map if x-kubernetes-list-map-keys is non-empty",
                )
            )
    if list_type == "map":
        errors.extend(_map_list_errors(schema, items, map_keys, path))
    if list_type in ("set", "map") and items is not None and items.get("nullable"):
        errors.append(
            forbidden(
                f"{path}.items.nullable",
                f"cannot be nullable when x-kubernetes-list-type is {list_type}",
            )
        )
    return errors


def _map_list_errors(
    schema: dict[str, Any], items: dict[str, Any] | None, map_keys: list[Any], path: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    if not map_keys:
        errors.append(
            required(
                f"{path}.x-kubernetes-list-map-keys",
                "must not be empty if x-kubernetes-list-type is map",
            )
        )
    if schema.get("items") is None:
        errors.append(
            required(f"{path}.items", "must have a schema if x-kubernetes-list-type is map")
        )
    if items is None:
        return errors
    if items.get("type") != "object":
        errors.append(
            invalid_value(
                f"{path}.items.type",
                items.get("type") or "",
                "must be object if parent array's x-kubernetes-list-type is map",
            )
        )
        return errors
    properties = items.get("properties") or {}
    required_keys = set(items.get("required") or [])
    seen: set[str] = set()
    for key in map_keys:
        prop = properties.get(key)
        if prop is None:
            errors.append(
                invalid_value(
                    f"{path}.x-kubernetes-list-map-keys",
                    map_keys,
                    "entries must all be names of item properties",
                )
            )
        else:
            if prop.get("type") in ("array", "object"):
                errors.append(
                    invalid_value(
                        _key(f"{path}.items.properties", key) + ".type",
                        "object",
                        "must be a scalar type if parent array's x-kubernetes-list-type is map",
                    )
                )
            if key not in required_keys and "default" not in prop:
                errors.append(
                    required(
                        _key(f"{path}.items.properties", key) + ".default",
                        "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                    )
                )
            if prop.get("nullable"):
                errors.append(
                    forbidden(
                        _key(f"{path}.items.properties", key) + ".nullable",
                        "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                    )
                )
        if key in seen:
            errors.append(
                invalid_value(
                    f"{path}.x-kubernetes-list-map-keys",
                    map_keys,
                    "must not contain duplicate entries",
                )
            )
        seen.add(key)
    return errors


def _rule_errors(schema: dict[str, Any], path: str) -> list[FieldError]:
    """The form of x-kubernetes-validations rules (their CEL is not compiled here)."""
    errors: list[FieldError] = []
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        rule = rule if isinstance(rule, dict) else {}
        rule_path = f"{path}.x-kubernetes-validations[{i}]"
        text, message = str(rule.get("rule") or ""), str(rule.get("message") or "")
        if not text.strip():
            errors.append(required(f"{rule_path}.rule", "rule is not specified"))
        elif message and not message.strip():
            errors.append(
                invalid_value(
                    f"{rule_path}.message", message, "message must be non-empty if specified"
                )
            )
        elif "\n" in message.strip() or "\r" in message.strip():
            errors.append(
                invalid_value(
                    f"{rule_path}.message", message, "message must not contain line breaks"
                )
            )
        elif ("\n" in text.strip() or "\r" in text.strip()) and not message.strip():
            errors.append(
                required(
                    f"{rule_path}.message", "message must be specified if rule contains line breaks"
                )
            )
        expression = str(rule.get("messageExpression") or "")
        if expression and not expression.strip():
            errors.append(
                required(
                    f"{rule_path}.messageExpression",
                    "messageExpression must be non-empty if specified",
                )
            )
        reason = rule.get("reason")
        if reason is not None and reason not in VALIDATION_REASONS:
            errors.append(not_supported(f"{rule_path}.reason", reason, list(VALIDATION_REASONS)))
    return errors


# -- structural schemas -------------------------------------------------------------------

_ROOT, _ITEM, _FIELD = "root", "item", "field"


def structural_errors(schema: dict[str, Any], path: str) -> list[FieldError]:
    """ValidateStructural: the errors sorted by their text, as kube-apiserver sorts them."""
    errors = _structural(schema, _ROOT, path)
    return sorted(errors, key=lambda e: e.message())


def _structural(schema: Any, level: str, path: str) -> list[FieldError]:
    if not isinstance(schema, dict):
        return []
    errors: list[FieldError] = []
    kind = schema.get("type") or ""
    if kind == "array" and schema.get("items") is None:
        errors.append(required(f"{path}.items", "must be specified"))
    if isinstance(schema.get("items"), dict):
        errors.extend(_structural(schema["items"], _ITEM, f"{path}.items"))
    for name, prop in (schema.get("properties") or {}).items():
        errors.extend(_structural(prop, _FIELD, _key(f"{path}.properties", name)))
    additional = schema.get("additionalProperties")
    if additional is not None and additional is not False and additional is not True:
        if level == _ROOT:
            errors.append(forbidden(f"{path}.additionalProperties", "must not be used at the root"))
        errors.extend(_structural(additional, _FIELD, f"{path}.additionalProperties"))
    elif additional is not None and level == _ROOT:
        errors.append(forbidden(f"{path}.additionalProperties", "must not be used at the root"))
    int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    if int_or_string and preserve:
        errors.append(
            invalid_value(
                f"{path}.x-kubernetes-preserve-unknown-fields",
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    if int_or_string and embedded:
        errors.append(
            invalid_value(
                f"{path}.x-kubernetes-embedded-resource",
                True,
                "must be false if x-kubernetes-int-or-string is true",
            )
        )
    errors.extend(_value_validation_errors(schema, level, path, int_or_string))
    if embedded and kind != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        errors.append(
            invalid_value(f"{path}.type", kind, detail)
            if kind
            else required(f"{path}.type", detail)
        )
    elif not kind and not int_or_string and not preserve:
        detail = {
            _ROOT: "must not be empty at the root",
            _ITEM: "must not be empty for specified array items",
            _FIELD: "must not be empty for specified object fields",
        }[level]
        errors.append(required(f"{path}.type", detail))
    if embedded and additional is not None:
        errors.append(
            forbidden(
                f"{path}.additionalProperties",
                "must not be used if x-kubernetes-embedded-resource is set",
            )
        )
    if level == _ROOT and kind and kind != "object":
        errors.append(invalid_value(f"{path}.type", kind, "must be object at the root"))
    check_metadata = level == _ROOT or embedded
    properties = schema.get("properties") or {}
    if check_metadata:
        for name in ("kind", "apiVersion"):
            prop = properties.get(name)
            if isinstance(prop, dict) and prop.get("type") != "string":
                errors.append(
                    invalid_value(
                        _key(f"{path}.properties", name) + ".type",
                        prop.get("type") or "",
                        "must be string",
                    )
                )
    metadata = properties.get("metadata")
    if isinstance(metadata, dict):
        meta_path = _key(f"{path}.properties", "metadata")
        if check_metadata and metadata.get("type") != "object":
            errors.append(
                invalid_value(f"{meta_path}.type", metadata.get("type") or "", "must be object")
            )
        if level == _ROOT and not _metadata_schema_allowed(metadata):
            errors.append(
                forbidden(
                    meta_path,
                    "must not specify anything other than name and generateName, "
                    "but metadata is implicitly specified",
                )
            )
    if embedded and not preserve and not properties:
        errors.append(
            required(
                f"{path}.properties",
                "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            )
        )
    return errors


def _metadata_schema_allowed(metadata: dict[str, Any]) -> bool:
    """At the root, metadata may only restrict name and generateName (its type and default
    are checked elsewhere)."""
    properties = metadata.get("properties")
    if properties is not None and (not properties or set(properties) - {"name", "generateName"}):
        return False
    return not set(metadata) - {"type", "default", "properties"}


def _value_validation_errors(
    schema: dict[str, Any], level: str, path: str, int_or_string: bool
) -> list[FieldError]:
    errors: list[FieldError] = []
    any_of = schema.get("anyOf") or []
    skip_any_of = int_or_string and _is_int_or_string_pair(any_of)
    if not skip_any_of:
        for i, sub in enumerate(any_of):
            errors.extend(_nested_errors(sub, level, f"{path}.anyOf[{i}]"))
    all_of = schema.get("allOf") or []
    for i, sub in enumerate(all_of):
        skip = (
            i == 0
            and int_or_string
            and isinstance(sub, dict)
            and _is_int_or_string_pair(sub.get("anyOf") or [])
        )
        errors.extend(_nested_errors(sub, level, f"{path}.allOf[{i}]", skip_any_of=skip))
    for i, sub in enumerate(schema.get("oneOf") or []):
        errors.extend(_nested_errors(sub, level, f"{path}.oneOf[{i}]"))
    errors.extend(_nested_errors(schema.get("not"), level, f"{path}.not"))
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(
                invalid_value(
                    f"{path}.pattern",
                    pattern,
                    f"must be a valid regular expression, but isn't: {exc}",
                )
            )
    return errors


def _is_int_or_string_pair(any_of: list[Any]) -> bool:
    return len(any_of) == 2 and any_of[0] == {"type": "integer"} and any_of[1] == {"type": "string"}


def _nested_errors(
    schema: Any, level: str, path: str, *, skip_any_of: bool = False
) -> list[FieldError]:
    """Inside allOf/anyOf/oneOf/not only value validations may appear."""
    if not isinstance(schema, dict):
        return []
    errors: list[FieldError] = []
    if not skip_any_of:
        for i, sub in enumerate(schema.get("anyOf") or []):
            errors.extend(_nested_errors(sub, level, f"{path}.anyOf[{i}]"))
    for i, sub in enumerate(schema.get("allOf") or []):
        errors.extend(_nested_errors(sub, level, f"{path}.allOf[{i}]"))
    for i, sub in enumerate(schema.get("oneOf") or []):
        errors.extend(_nested_errors(sub, level, f"{path}.oneOf[{i}]"))
    errors.extend(_nested_errors(schema.get("not"), level, f"{path}.not"))
    if isinstance(schema.get("items"), dict):
        errors.extend(_nested_errors(schema["items"], level, f"{path}.items"))
    for name, prop in (schema.get("properties") or {}).items():
        errors.extend(_nested_errors(prop, _FIELD, _key(f"{path}.properties", name)))
    checks = (
        ("type", "must be empty to be structural"),
        ("additionalProperties", "must be undefined to be structural"),
        ("default", "must be undefined to be structural"),
        ("title", "must be empty to be structural"),
        ("description", "must be empty to be structural"),
        ("nullable", "must be false to be structural"),
        ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
        ("x-kubernetes-embedded-resource", "must be false to be structural"),
        ("x-kubernetes-int-or-string", "must be false to be structural"),
        ("x-kubernetes-list-map-keys", "must be empty to be structural"),
        ("x-kubernetes-list-type", "must be undefined to be structural"),
        ("x-kubernetes-map-type", "must be undefined to be structural"),
        ("x-kubernetes-validations", "must be empty to be structural"),
    )
    for name, detail in checks:
        value = schema.get(name)
        if value not in (None, False, "", []):
            errors.append(forbidden(f"{path}.{name}", detail))
    if "metadata" in (schema.get("properties") or {}):
        errors.append(
            forbidden(
                _key(f"{path}.properties", "metadata"), "must not be specified in a nested context"
            )
        )
    return errors
