"""API errors as Kubernetes reports them: a `metav1.Status` with a code, a reason and causes.

Hierarchy:

    StatusError                 any failure answered with a Status
      (constructors below)      not_found, already_exists, conflict, invalid, bad_request, ...

A `FieldError` names one bad field; `invalid()` turns a list of them into a 422 whose
`details.causes` kubectl prints one per line.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from timonel.api.objects import Object


class ErrorType(Enum):
    """field.ErrorType from apimachinery: the cause reason and its human wording."""

    REQUIRED = ("FieldValueRequired", "Required value")
    INVALID = ("FieldValueInvalid", "Invalid value")
    NOT_SUPPORTED = ("FieldValueNotSupported", "Unsupported value")
    DUPLICATE = ("FieldValueDuplicate", "Duplicate value")
    FORBIDDEN = ("FieldValueForbidden", "Forbidden")
    TOO_LONG = ("FieldValueTooLong", "Too long")
    TOO_MANY = ("FieldValueTooMany", "Too many")
    NOT_FOUND = ("FieldValueNotFound", "Not found")
    TYPE_INVALID = ("FieldValueTypeInvalid", "Invalid value")

    @property
    def reason(self) -> str:
        return self.value[0]

    @property
    def wording(self) -> str:
        return self.value[1]


_NO_VALUE = object()


class RawValue(str):
    """A bad value already worded the way apimachinery prints a Go struct (`%#v`), shown
    unquoted: `rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"x"}`."""


def _render_value(value: Any) -> str:
    if isinstance(value, RawValue):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class FieldError:
    """One bad field, worded as apimachinery's field.Error."""

    type: ErrorType
    field: str
    detail: str = ""
    value: Any = dataclasses.field(default=_NO_VALUE, compare=False)

    def body(self) -> str:
        """The message without the field path: `Invalid value: "x": detail`."""
        text = self.type.wording
        if (
            self.type
            in (
                ErrorType.INVALID,
                ErrorType.NOT_SUPPORTED,
                ErrorType.DUPLICATE,
                ErrorType.TYPE_INVALID,
                ErrorType.NOT_FOUND,
                ErrorType.TOO_MANY,
            )
            and self.value is not _NO_VALUE
        ):
            text += ": " + _render_value(self.value)
        if self.detail:
            text += ": " + self.detail
        return text

    def message(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, str]:
        return {"reason": self.type.reason, "message": self.body(), "field": self.field}


def required(path: str, detail: str = "") -> FieldError:
    return FieldError(ErrorType.REQUIRED, path, detail)


def invalid_value(path: str, value: Any, detail: str = "") -> FieldError:
    return FieldError(ErrorType.INVALID, path, detail, value)


def not_supported(path: str, value: Any, valid: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(json.dumps(v) for v in valid)
    return FieldError(ErrorType.NOT_SUPPORTED, path, detail, value)


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError(ErrorType.FORBIDDEN, path, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError(ErrorType.DUPLICATE, path, "", value)


def too_long(path: str, limit: int) -> FieldError:
    return FieldError(ErrorType.TOO_LONG, path, f"must have at most {limit} bytes")


class StatusError(Exception):
    """A failure the API answers with a Status object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> Object:
        status: Object = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if not self.reason:
            del status["reason"]  # StatusReasonUnknown is omitted, as Go's omitempty does
        # An empty details object is still written ({}), as for failed JSON patches.
        if self.details is not None:
            status["details"] = self.details
        return status


def qualified_resource(resource: str, group: str) -> str:
    """`pods`, `deployments.apps`: how Kubernetes names a resource in messages."""
    return f"{resource}.{group}" if group else resource


def _details(resource: str, group: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def not_found(resource: str, group: str, name: str) -> StatusError:
    return StatusError(
        404,
        "NotFound",
        f'{qualified_resource(resource, group)} "{name}" not found',
        details=_details(resource, group, name),
    )


def already_exists(resource: str, group: str, name: str) -> StatusError:
    return StatusError(
        409,
        "AlreadyExists",
        f'{qualified_resource(resource, group)} "{name}" already exists',
        details=_details(resource, group, name),
    )


def conflict(resource: str, group: str, name: str, why: str | None = None) -> StatusError:
    why = why or (
        "the object has been modified; please apply your changes to the latest version and try again"
    )
    return StatusError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified_resource(resource, group)} "{name}": {why}',
        details=_details(resource, group, name),
    )


def invalid(kind: str, group: str, name: str, errors: list[FieldError]) -> StatusError:
    qualified_kind = f"{kind}.{group}" if group else kind
    joined = (
        errors[0].message()
        if len(errors) == 1
        else "[" + ", ".join(e.message() for e in errors) + "]"
    )
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": [e.cause() for e in errors]}
    if group:
        details["group"] = group
    return StatusError(
        422, "Invalid", f'{qualified_kind} "{name}" is invalid: {joined}', details=details
    )


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def gone(message: str) -> StatusError:
    return StatusError(410, "Expired", message)


def method_not_allowed(message: str) -> StatusError:
    return StatusError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> StatusError:
    return StatusError(
        415,
        "UnsupportedMediaType",
        f'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got "{content_type}")',
    )


def not_acceptable(accept: str) -> StatusError:
    return StatusError(
        406,
        "NotAcceptable",
        f"only the following media types are accepted: application/json, application/yaml (got {accept!r})",
    )


def request_entity_too_large(limit: int) -> StatusError:
    return StatusError(
        413, "RequestEntityTooLarge", f"the request body exceeds the limit of {limit} bytes"
    )


def unauthorized() -> StatusError:
    return StatusError(401, "Unauthorized", "Unauthorized")


def forbidden_request(message: str) -> StatusError:
    return StatusError(403, "Forbidden", message)


def internal_error(message: str) -> StatusError:
    return StatusError(500, "InternalError", f"Internal error occurred: {message}")


def timeout(message: str) -> StatusError:
    return StatusError(504, "Timeout", message)
