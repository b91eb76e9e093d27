"""apiextensions.k8s.io/v1 CustomResourceDefinition.

kube-apiserver validates CRDs in their internal form, where per-version schemas,
subresources, printer columns and selectable fields that are identical across versions
move up to `spec.validation`, `spec.subresources`, ... (apiextensions v1 conversion.go):
error paths follow that form, so a single-version CRD's schema errors read
`spec.validation.openAPIV3Schema...`, as users of kube-apiserver see them.

The naming and establishing controllers of kube-apiserver accept names and mark a CRD
Established shortly after it is created; timonel has no such controllers and serves the
resources at once, so the status says so from the start.
"""

from __future__ import annotations

import unicodedata
from typing import Any, ClassVar
from urllib.parse import urlsplit

from timonel.api.errors import (
    ErrorType,
    FieldError,
    RawValue,
    duplicate,
    forbidden,
    invalid_value,
    not_supported,
    required,
)
from timonel.api.objects import Object, now_rfc3339
from timonel.api.validation import dns1035_label_problems, dns1123_subdomain_problems
from timonel.kinds.apiextensions.schema_validation import validate_openapi_schema
from timonel.kinds.base import Strategy
from timonel.kinds.core.common import immutable

GROUP = "apiextensions.k8s.io"
SCOPES = ("Cluster", "Namespaced")
CONVERSION_STRATEGIES = ("None", "Webhook")
CONVERSION_REVIEW_VERSIONS = ("v1", "v1beta1")
PRINTER_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")
PRINTER_COLUMN_FORMATS = (
    "byte",
    "date",
    "date-time",
    "double",
    "float",
    "int32",
    "int64",
    "password",
)
MAX_SELECTABLE_FIELDS = 8
API_APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
_ESTABLISHED_MESSAGE = "the initial names have been accepted"


class CustomResourceDefinitionStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "CustomResourceDefinition"
    plural: ClassVar[str] = "customresourcedefinitions"
    singular: ClassVar[str] = "customresourcedefinition"
    namespaced: ClassVar[bool] = False
    short_names: ClassVar[tuple[str, ...]] = ("crd", "crds")
    categories: ClassVar[tuple[str, ...]] = ("api-extensions",)
    has_status: ClassVar[bool] = True
    tracks_generation: ClassVar[bool] = True

    # -- defaults and preparation -----------------------------------------------------

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        names = spec.get("names")
        if isinstance(names, dict):
            if not names.get("singular"):
                names["singular"] = str(names.get("kind") or "").lower()
            if not names.get("listKind") and names.get("kind"):
                names["listKind"] = f"{names['kind']}List"
        conversion = spec.get("conversion")
        if not isinstance(conversion, dict):
            conversion = spec["conversion"] = {}
        conversion.setdefault("strategy", "None")
        service = ((conversion.get("webhook") or {}).get("clientConfig") or {}).get("service")
        if isinstance(service, dict):
            service.setdefault("port", 443)
        for version in spec.get("versions") or []:
            if isinstance(version, dict):
                # Go serializes these booleans always, false included.
                version.setdefault("served", False)
                version.setdefault("storage", False)
        if spec.get("preserveUnknownFields") is False:
            del spec["preserveUnknownFields"]  # omitempty
        status = obj.get("status")
        if isinstance(status, dict) and not status.get("storedVersions"):
            stored = _storage_version_name(spec)
            if stored:
                status["storedVersions"] = [stored]

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        spec = obj.get("spec") or {}
        now = now_rfc3339()
        status: dict[str, Any] = {
            "acceptedNames": _accepted_names(spec),
            "conditions": [
                {
                    "lastTransitionTime": now,
                    "message": "no conflicts found",
                    "reason": "NoConflicts",
                    "status": "True",
                    "type": "NamesAccepted",
                },
                {
                    "lastTransitionTime": now,
                    "message": _ESTABLISHED_MESSAGE,
                    "reason": "InitialNamesAccepted",
                    "status": "True",
                    "type": "Established",
                },
            ],
            "storedVersions": [],
        }
        stored = _storage_version_name(spec)
        if stored:
            status["storedVersions"].append(stored)
        obj["status"] = status

    def prepare_for_update(self, new: Object, old: Object) -> None:
        super().prepare_for_update(new, old)
        spec = new.get("spec") or {}
        status = new.setdefault("status", {})
        status["acceptedNames"] = _accepted_names(spec)
        stored = _storage_version_name(spec)
        stored_versions = status.setdefault("storedVersions", [])
        if stored and stored not in stored_versions:
            stored_versions.append(stored)

    # -- validation -------------------------------------------------------------------

    def validate_meta(self, obj: Object) -> list[FieldError]:
        errors = super().validate_meta(obj)
        name = str((obj.get("metadata") or {}).get("name") or "")
        spec = obj.get("spec") or {}
        wanted = f"{(spec.get('names') or {}).get('plural') or ''}.{spec.get('group') or ''}"
        if name and name != wanted:
            errors.append(
                invalid_value("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
            )
        return errors

    def validate(self, obj: Object) -> list[FieldError]:
        return self._validate(obj, None)

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = self._validate(new, old)
        spec, old_spec = new.get("spec") or {}, old.get("spec") or {}
        names, old_names = spec.get("names") or {}, old_spec.get("names") or {}
        if _is_established(old):
            if spec.get("scope") != old_spec.get("scope"):
                errors.append(immutable("spec.scope", spec.get("scope") or ""))
            if names.get("kind") != old_names.get("kind"):
                errors.append(immutable("spec.names.kind", names.get("kind") or ""))
        if spec.get("group") != old_spec.get("group"):
            errors.append(immutable("spec.group", spec.get("group") or ""))
        if names.get("plural") != old_names.get("plural"):
            errors.append(immutable("spec.names.plural", names.get("plural") or ""))
        return errors

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        accepted = (new.get("status") or {}).get("acceptedNames") or {}
        return validate_names(accepted, "status.acceptedNames")

    def _validate(self, obj: Object, old: Object | None) -> list[FieldError]:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
        # Existing CRDs that lacked schemas keep being accepted without them.
        require_schema = old is None or _all_versions_have_schemas(old.get("spec") or {})
        errors = validate_spec(spec, require_schema=require_schema)
        # status.acceptedNames mirror spec.names here, whose errors are reported already.
        status = obj.get("status") or {}
        errors.extend(
            validate_stored_versions(status.get("storedVersions") or [], spec.get("versions") or [])
        )
        errors.extend(_api_approval_errors(obj, old))
        if spec.get("preserveUnknownFields") is True and not (
            old is not None and (old.get("spec") or {}).get("preserveUnknownFields") is True
        ):
            errors.append(
                invalid_value(
                    "spec.preserveUnknownFields",
                    True,
                    "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
                )
            )
        return errors


# -- helpers over the CRD -------------------------------------------------------------------


def _storage_version_name(spec: dict[str, Any]) -> str:
    for version in spec.get("versions") or []:
        if isinstance(version, dict) and version.get("storage"):
            return str(version.get("name") or "")
    return ""


def _accepted_names(spec: dict[str, Any]) -> dict[str, Any]:
    names = spec.get("names") or {}
    return {
        k: names[k]
        for k in ("categories", "kind", "listKind", "plural", "shortNames", "singular")
        if names.get(k)
    }


def _is_established(crd: Object) -> bool:
    for condition in (crd.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Established":
            return bool(condition.get("status") == "True")
    return False


def _all_versions_have_schemas(spec: dict[str, Any]) -> bool:
    return all(
        isinstance((v.get("schema") or {}).get("openAPIV3Schema"), dict)
        for v in spec.get("versions") or []
        if isinstance(v, dict)
    )


def _shared(versions: list[dict[str, Any]], field: str) -> tuple[bool, Any]:
    """(identical across versions, the value): identical fields move to the top level of
    the internal spec, and their errors are reported there."""
    if not versions:
        return False, None
    first = versions[0].get(field)
    return all(v.get(field) == first for v in versions), first


def _has_status(subresources: Any) -> bool:
    return isinstance(subresources, dict) and subresources.get("status") is not None


# -- spec ---------------------------------------------------------------------------------


def validate_spec(spec: dict[str, Any], *, require_schema: bool = True) -> list[FieldError]:
    errors: list[FieldError] = []
    group = str(spec.get("group") or "")
    if not group:
        errors.append(required("spec.group"))
    elif dns1123_subdomain_problems(group):
        errors.append(
            invalid_value("spec.group", group, ",".join(dns1123_subdomain_problems(group)))
        )
    elif len(group.split(".")) < 2:
        errors.append(
            invalid_value("spec.group", group, "should be a domain with at least one dot")
        )
    errors.extend(_enum_errors("spec.scope", spec.get("scope"), SCOPES))

    versions = [v if isinstance(v, dict) else {} for v in spec.get("versions") or []]
    schema_shared, shared_schema = _shared(versions, "schema")
    subresources_shared, shared_subresources = _shared(versions, "subresources")
    columns_shared, shared_columns = _shared(versions, "additionalPrinterColumns")
    fields_shared, shared_fields = _shared(versions, "selectableFields")
    if require_schema and not (schema_shared and _schema_of(shared_schema) is not None):
        for i, version in enumerate(versions):
            if _schema_of(version.get("schema")) is None:
                errors.append(
                    required(f"spec.versions[{i}].schema.openAPIV3Schema", "schemas are required")
                )

    any_status = any(_has_status(v.get("subresources")) for v in versions)
    storage_count = 0
    seen: set[str] = set()
    unique = True
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}]"
        name = str(version.get("name") or "")
        if version.get("storage"):
            storage_count += 1
        if name in seen:
            unique = False
        seen.add(name)
        problems = dns1035_label_problems(name)
        if problems:
            errors.append(invalid_value(f"{path}.name", name, ",".join(problems)))
        errors.extend(_deprecation_errors(version, path))
        if not schema_shared:
            errors.extend(
                _validation_errors(
                    version.get("schema"),
                    f"{path}.schema",
                    _has_status(version.get("subresources")),
                )
            )
        if not subresources_shared:
            errors.extend(
                validate_subresources(version.get("subresources"), f"{path}.subresources")
            )
        if not columns_shared:
            for j, column in enumerate(version.get("additionalPrinterColumns") or []):
                errors.extend(
                    validate_printer_column(column or {}, f"{path}.additionalPrinterColumns[{j}]")
                )
        if not fields_shared and version.get("selectableFields"):
            errors.extend(
                _selectable_field_errors(
                    version.get("selectableFields") or [],
                    _schema_of(version.get("schema")),
                    f"{path}.selectableFields",
                )
            )

    if not unique:
        errors.append(
            invalid_value(
                "spec.versions", _versions_value(versions), "must contain unique version names"
            )
        )
    if storage_count != 1:
        errors.append(
            invalid_value(
                "spec.versions",
                _versions_value(versions),
                "must have exactly one version marked as storage version",
            )
        )
    if versions:
        first = str(versions[0].get("name") or "")
        problems = dns1035_label_problems(first)
        if problems:
            errors.append(invalid_value("spec.version", first, ",".join(problems)))

    names = spec.get("names") if isinstance(spec.get("names"), dict) else {}
    assert isinstance(names, dict)
    for field in ("plural", "singular", "kind", "listKind"):
        if not names.get(field):
            errors.append(required(f"spec.names.{field}"))
    errors.extend(validate_names(names, "spec.names"))
    if schema_shared:
        errors.extend(_validation_errors(shared_schema, "spec.validation", any_status))
    if subresources_shared:
        errors.extend(validate_subresources(shared_subresources, "spec.subresources"))
    if columns_shared:
        for j, column in enumerate(shared_columns or []):
            errors.extend(
                validate_printer_column(column or {}, f"spec.additionalPrinterColumns[{j}]")
            )
    if fields_shared and shared_fields:
        if _schema_of(shared_schema) is None:
            errors.append(
                invalid_value(
                    "spec.selectableFields",
                    "",
                    "selectableFields may only be set when validations.schema is included",
                )
            )
        else:
            errors.extend(
                _selectable_field_errors(
                    shared_fields, _schema_of(shared_schema), "spec.selectableFields"
                )
            )
    errors.extend(validate_conversion(spec.get("conversion")))
    return errors


def _versions_value(versions: list[dict[str, Any]]) -> RawValue:
    """How Go prints the internal versions slice, shortened to what identifies them."""
    parts = ", ".join(
        f'apiextensions.CustomResourceDefinitionVersion{{Name:"{v.get("name") or ""}", '
        f"Served:{str(bool(v.get('served'))).lower()}, Storage:{str(bool(v.get('storage'))).lower()}}}"
        for v in versions
    )
    return RawValue(f"[]apiextensions.CustomResourceDefinitionVersion{{{parts}}}")


def _schema_of(validation: Any) -> dict[str, Any] | None:
    schema = validation.get("openAPIV3Schema") if isinstance(validation, dict) else None
    return schema if isinstance(schema, dict) else None


def _validation_errors(validation: Any, path: str, status_enabled: bool) -> list[FieldError]:
    schema = _schema_of(validation)
    if schema is None:
        return []
    return validate_openapi_schema(schema, path, status_enabled=status_enabled)


def _enum_errors(path: str, value: Any, accepted: tuple[str, ...]) -> list[FieldError]:
    if not value:
        return [required(path)]
    if value not in accepted:
        return [not_supported(path, value, list(accepted))]
    return []


def _deprecation_errors(version: dict[str, Any], path: str) -> list[FieldError]:
    warning = version.get("deprecationWarning")
    if warning is None:
        return []
    problems: list[str] = []
    if not version.get("deprecated"):
        problems.append("can only be set for deprecated versions")
    else:
        text = str(warning)
        if len(text.encode()) > 256:
            problems.append("must be <= 256 characters long")
        if not text:
            problems.append("must not be an empty string")
        for i, char in enumerate(text):
            if unicodedata.category(char).startswith("C"):
                kind = "control" if unicodedata.category(char) == "Cc" else "non-printable"
                problems.append(
                    f"must only contain printable UTF-8 characters; {kind} character found at index {i}"
                )
                break
    return [invalid_value(f"{path}.deprecationWarning", warning, p) for p in problems]


def validate_names(names: dict[str, Any], path: str) -> list[FieldError]:
    """ValidateCustomResourceDefinitionNames: DNS-1035 labels, kinds in mixed case."""
    errors: list[FieldError] = []
    for field in ("plural", "singular"):
        value = str(names.get(field) or "")
        problems = dns1035_label_problems(value)
        if value and problems:
            errors.append(invalid_value(f"{path}.{field}", value, ",".join(problems)))
    for field in ("kind", "listKind"):
        value = str(names.get(field) or "")
        problems = dns1035_label_problems(value.lower())
        if value and problems:
            errors.append(
                invalid_value(
                    f"{path}.{field}",
                    value,
                    "may have mixed case, but should otherwise match: " + ",".join(problems),
                )
            )
    for i, short_name in enumerate(names.get("shortNames") or []):
        problems = dns1035_label_problems(str(short_name))
        if problems:
            errors.append(invalid_value(f"{path}.shortNames[{i}]", short_name, ",".join(problems)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errors.append(
            invalid_value(
                f"{path}.listKind", names.get("listKind"), "kind and listKind may not be the same"
            )
        )
    for i, category in enumerate(names.get("categories") or []):
        problems = dns1035_label_problems(str(category))
        if problems:
            errors.append(invalid_value(f"{path}.categories[{i}]", category, ",".join(problems)))
    return errors


def validate_stored_versions(stored: list[Any], versions: list[Any]) -> list[FieldError]:
    path = "status.storedVersions"
    if not stored:
        return [
            invalid_value(path, RawValue("[]string(nil)"), "must have at least one stored version")
        ]
    errors: list[FieldError] = []
    shown = RawValue("[]string{" + ", ".join(f'"{v}"' for v in stored) + "}")
    remaining = {str(v): i for i, v in enumerate(stored)}
    for version in versions:
        name = str((version or {}).get("name") or "")
        if (version or {}).get("storage") and name not in remaining:
            errors.append(invalid_value(path, shown, f"must have the storage version {name}"))
        remaining.pop(name, None)
    for name, i in sorted(remaining.items(), key=lambda item: item[1]):
        errors.append(invalid_value(f"{path}[{i}]", name, "must appear in spec.versions"))
    return errors


def validate_subresources(subresources: Any, path: str) -> list[FieldError]:
    if not isinstance(subresources, dict):
        return []
    scale = subresources.get("scale")
    if not isinstance(scale, dict):
        return []
    errors: list[FieldError] = []
    for field, prefix, detail in (
        ("specReplicasPath", (".spec.",), "should be a json path under .spec"),
        ("statusReplicasPath", (".status.",), "should be a json path under .status"),
    ):
        value = str(scale.get(field) or "")
        field_path = f"{path}.scale.{field}"
        if not value:
            errors.append(required(field_path))
            continue
        problems = simple_json_path_errors(value, field_path)
        if problems:
            errors.extend(problems)
        elif not value.startswith(prefix):
            errors.append(invalid_value(field_path, value, detail))
    selector = scale.get("labelSelectorPath")
    if selector:
        field_path = f"{path}.scale.labelSelectorPath"
        problems = simple_json_path_errors(str(selector), field_path)
        if problems:
            errors.extend(problems)
        elif not str(selector).startswith((".spec.", ".status.")):
            errors.append(
                invalid_value(
                    field_path, selector, "should be a json path under either .spec or .status"
                )
            )
    return errors


def simple_json_path_errors(value: str, path: str) -> list[FieldError]:
    if not value:
        return [invalid_value(path, value, "must not be empty")]
    if not value.startswith("."):
        return [invalid_value(path, value, "must be a simple json path starting with .")]
    return []


def validate_printer_column(column: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not column.get("name"):
        errors.append(required(f"{path}.name"))
    kinds = ",".join(PRINTER_COLUMN_TYPES)
    kind = column.get("type")
    if not kind:
        errors.append(required(f"{path}.type", f"must be one of {kinds}"))
    elif kind not in PRINTER_COLUMN_TYPES:
        errors.append(invalid_value(f"{path}.type", kind, f"must be one of {kinds}"))
    fmt = column.get("format")
    if fmt and fmt not in PRINTER_COLUMN_FORMATS:
        errors.append(
            invalid_value(
                f"{path}.format", fmt, f"must be one of {','.join(PRINTER_COLUMN_FORMATS)}"
            )
        )
    json_path = str(column.get("jsonPath") or "")
    if not json_path:
        errors.append(required(f"{path}.JSONPath"))
    else:
        errors.extend(simple_json_path_errors(json_path, f"{path}.JSONPath"))
    return errors


def _selectable_field_errors(
    fields: list[Any], schema: dict[str, Any] | None, path: str
) -> list[FieldError]:
    errors: list[FieldError] = []
    unique: set[str] = set()
    for i, entry in enumerate(fields):
        field_path = f"{path}[{i}].jsonPath"
        json_path = str((entry or {}).get("jsonPath") or "")
        if not json_path:
            errors.append(required(field_path))
            continue
        parts = json_path.removeprefix(".").split(".") if json_path.startswith(".") else []
        leaf = _schema_at(schema, parts)
        if not parts or not all(parts) or "[" in json_path or leaf is None:
            errors.append(
                invalid_value(
                    field_path, json_path, "is an invalid path: does not refer to a valid field"
                )
            )
            continue
        if parts[0] == "metadata":
            errors.append(
                invalid_value(field_path, json_path, "must not point to fields in metadata")
            )
        if leaf.get("type") not in ("string", "boolean", "integer"):
            errors.append(
                invalid_value(
                    field_path,
                    json_path,
                    "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.",
                )
            )
        key = ".".join(parts)
        if key in unique:
            errors.append(duplicate(field_path, json_path))
        unique.add(key)
    if len(unique) > MAX_SELECTABLE_FIELDS:
        errors.append(
            FieldError(
                ErrorType.TOO_MANY,
                path,
                f"must have at most {MAX_SELECTABLE_FIELDS} items",
                len(unique),
            )
        )
    return errors


def _schema_at(schema: dict[str, Any] | None, parts: list[str]) -> dict[str, Any] | None:
    node: Any = schema
    for part in parts:
        if part == "metadata" and node is schema:
            return {"type": "object"}
        if not isinstance(node, dict):
            return None
        node = (node.get("properties") or {}).get(part)
    return node if isinstance(node, dict) else None


# -- conversion -----------------------------------------------------------------------------


def validate_conversion(conversion: Any) -> list[FieldError]:
    """The v1 `webhook` block is `webhookClientConfig` and `conversionReviewVersions` of
    the internal type: errors use those names."""
    if not isinstance(conversion, dict):
        return []
    path = "spec.conversion"
    strategy = conversion.get("strategy")
    errors = _enum_errors(f"{path}.strategy", strategy, CONVERSION_STRATEGIES)
    webhook = conversion.get("webhook") if isinstance(conversion.get("webhook"), dict) else None
    client_config = (webhook or {}).get("clientConfig")
    review_versions = (webhook or {}).get("conversionReviewVersions") or []
    if strategy == "Webhook":
        if not isinstance(client_config, dict):
            errors.append(
                required(f"{path}.webhookClientConfig", "required when strategy is set to Webhook")
            )
        else:
            url, service = client_config.get("url"), client_config.get("service")
            if (url is None) == (service is None):
                errors.append(
                    required(
                        f"{path}.webhookClientConfig", "exactly one of url or service is required"
                    )
                )
            elif url is not None:
                errors.extend(_webhook_url_errors(str(url), f"{path}.webhookClientConfig.url"))
            else:
                errors.extend(
                    _webhook_service_errors(service or {}, f"{path}.webhookClientConfig.service")
                )
        errors.extend(_review_version_errors(review_versions, f"{path}.conversionReviewVersions"))
    else:
        if client_config is not None:
            errors.append(
                forbidden(
                    f"{path}.webhookClientConfig",
                    "should not be set when strategy is not set to Webhook",
                )
            )
        if review_versions:
            errors.append(
                forbidden(
                    f"{path}.conversionReviewVersions",
                    "should not be set when strategy is not set to Webhook",
                )
            )
    return errors


def _review_version_errors(versions: list[Any], path: str) -> list[FieldError]:
    if not versions:
        return [required(path)]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        version = str(version)
        if version in seen:
            errors.append(invalid_value(f"{path}[{i}]", version, "duplicate version"))
            continue
        seen.add(version)
        errors.extend(
            invalid_value(f"{path}[{i}]", version, p) for p in dns1035_label_problems(version)
        )
    if not seen & set(CONVERSION_REVIEW_VERSIONS):
        shown = RawValue("[]string{" + ", ".join(f'"{v}"' for v in versions) + "}")
        errors.append(
            invalid_value(
                path, shown, f"must include at least one of {', '.join(CONVERSION_REVIEW_VERSIONS)}"
            )
        )
    return errors


def _webhook_url_errors(url: str, path: str) -> list[FieldError]:
    form = "; desired format: https://host[/path]"
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        return [required(path, f"url must be a valid URL: {exc}{form}")]
    errors: list[FieldError] = []
    if parts.scheme != "https":
        errors.append(
            invalid_value(path, parts.scheme, "'https' is the only allowed URL scheme" + form)
        )
    if not parts.netloc:
        errors.append(invalid_value(path, parts.netloc, "host must be specified" + form))
    if "@" in parts.netloc:
        errors.append(
            invalid_value(
                path,
                parts.netloc.rpartition("@")[0],
                "user information is not permitted in the URL",
            )
        )
    if parts.fragment:
        errors.append(invalid_value(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        errors.append(
            invalid_value(path, parts.query, "query parameters are not permitted in the URL")
        )
    return errors


def _webhook_service_errors(service: dict[str, Any], path: str) -> list[FieldError]:
    errors: list[FieldError] = []
    if not service.get("name"):
        errors.append(required(f"{path}.name", "service name is required"))
    if not service.get("namespace"):
        errors.append(required(f"{path}.namespace", "service namespace is required"))
    port = service.get("port", 443)
    if not isinstance(port, int) or not 1 <= port <= 65535:
        errors.append(
            invalid_value(
                f"{path}.port", port, "port is not valid: must be between 1 and 65535, inclusive"
            )
        )
    url_path = service.get("path")
    if url_path in (None, "", "/"):
        return errors
    url_path = str(url_path)
    if url_path == "//":
        errors.append(invalid_value(f"{path}.path", url_path, "segment[0] may not be empty"))
        return errors
    if not url_path.startswith("/"):
        errors.append(invalid_value(f"{path}.path", url_path, "must start with a '/'"))
    return errors


# -- API approval for Kubernetes-owned groups -----------------------------------------------


def _is_protected_group(group: str) -> bool:
    return group in ("k8s.io", "kubernetes.io") or group.endswith((".k8s.io", ".kubernetes.io"))


def _approval_state(annotations: dict[str, Any]) -> tuple[str, str]:
    value = str(annotations.get(API_APPROVAL_ANNOTATION) or "")
    if not value:
        return "missing", (
            f'protected groups must have approval annotation "{API_APPROVAL_ANNOTATION}", '
            "see https://github.com/kubernetes/enhancements/pull/1111"
        )
    if value.startswith("unapproved"):
        return "bypassed", f'not approved: "{value}"'
    parts = urlsplit(value)
    if parts.scheme and parts.netloc:
        return "approved", f"approved in {value}"
    return "invalid", (
        f'protected groups must have approval annotation "{API_APPROVAL_ANNOTATION}" with either a '
        'URL or a reason starting with "unapproved", see https://github.com/kubernetes/enhancements/pull/1111'
    )


def _api_approval_errors(crd: Object, old: Object | None) -> list[FieldError]:
    group = str((crd.get("spec") or {}).get("group") or "")
    if not _is_protected_group(group):
        return []
    annotations = (crd.get("metadata") or {}).get("annotations") or {}
    state, reason = _approval_state(annotations)
    if (
        old is not None
        and _approval_state((old.get("metadata") or {}).get("annotations") or {})[0] == state
    ):
        return []
    path = f"metadata.annotations[{API_APPROVAL_ANNOTATION}]"
    if state == "missing":
        return [required(path, reason)]
    if state == "invalid":
        return [invalid_value(path, annotations.get(API_APPROVAL_ANNOTATION), reason)]
    return []
