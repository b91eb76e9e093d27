"""apps/v1 ControllerRevision: an immutable snapshot of a DaemonSet's or StatefulSet's
template, numbered by `revision`."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError, invalid_value, required
from timonel.api.objects import Object
from timonel.kinds.apps.intstr import is_int, validate_nonnegative
from timonel.kinds.apps.workload import semantic_equal
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.printing import creation_age


def controller_name(obj: Object) -> str:
    """`daemonset.apps/web` for the owner marked controller, `<none>` without one."""
    for owner in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(owner, dict) and owner.get("controller") is True:
            api_version = str(owner.get("apiVersion", ""))
            group = api_version.rpartition("/")[0] if "/" in api_version else ""
            kind = str(owner.get("kind", ""))
            group_kind = f"{kind}.{group}" if group else kind
            name = str(owner.get("name", ""))
            return f"{group_kind.lower()}/{name}" if group_kind else name
    return "<none>"


class ControllerRevisionStrategy(Strategy):
    group: ClassVar[str] = "apps"
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "ControllerRevision"
    plural: ClassVar[str] = "controllerrevisions"
    singular: ClassVar[str] = "controllerrevision"
    # Checked by validate_update, with kube-apiserver's wording.
    immutable_fields: ClassVar[tuple[str, ...]] = ("data",)
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Controller", description="Controller of the object"),
        Column(
            "Revision",
            description="revision indicates the revision of the state represented by Data.",
        ),
        AGE_COLUMN,
    )

    def default(self, obj: Object) -> None:
        if obj.get("revision") is None:
            obj["revision"] = 0

    def validate(self, obj: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        if obj.get("data") is None:
            errors.append(required("data", "data is mandatory"))
        errors += validate_nonnegative(obj.get("revision"), "revision")
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = self.validate(new)
        if not semantic_equal(new.get("data"), old.get("data")):
            errors.append(invalid_value("data", new.get("data"), "field is immutable"))
        return errors

    def table_row(self, obj: Object) -> list[Any]:
        revision = obj.get("revision")
        return [
            (obj.get("metadata") or {}).get("name", ""),
            controller_name(obj),
            revision if is_int(revision) else 0,
            creation_age(obj),
        ]
