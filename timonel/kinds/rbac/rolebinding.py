"""rbac.authorization.k8s.io/v1 RoleBinding: grants a Role or ClusterRole in a namespace."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError
from timonel.api.objects import Object
from timonel.kinds.base import Column, Strategy
from timonel.kinds.printing import field_description
from timonel.kinds.rbac.policy import (
    GROUP,
    binding_columns,
    binding_row,
    default_binding,
    rbac_name_problems,
    role_ref_change,
    validate_binding,
)


class RoleBindingStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "RoleBinding"
    plural: ClassVar[str] = "rolebindings"
    singular: ClassVar[str] = "rolebinding"
    immutable_fields: ClassVar[tuple[str, ...]] = ("roleRef",)
    columns: ClassVar[tuple[Column, ...]] = binding_columns(
        field_description(GROUP, "v1", "RoleBinding", "roleRef"), "roleBinding"
    )

    def name_problems(self, name: str) -> list[str]:
        return rbac_name_problems(name)

    def default(self, obj: Object) -> None:
        default_binding(obj)

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_binding(obj, ("Role", "ClusterRole"), namespaced=True)

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new) + role_ref_change(new, old)

    def table_row(self, obj: Object) -> list[Any]:
        return binding_row(obj)
