"""rbac.authorization.k8s.io/v1 Role: namespaced permissions."""

from __future__ import annotations

from typing import ClassVar

from timonel.api.errors import FieldError
from timonel.api.objects import Object
from timonel.kinds.base import Strategy
from timonel.kinds.rbac.policy import GROUP, rbac_name_problems, validate_policy_rule


class RoleStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "Role"
    plural: ClassVar[str] = "roles"
    singular: ClassVar[str] = "role"

    def name_problems(self, name: str) -> list[str]:
        return rbac_name_problems(name)

    def validate(self, obj: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        for i, rule in enumerate(obj.get("rules") or []):
            errors.extend(validate_policy_rule(rule, True, f"rules[{i}]"))
        return errors
