"""rbac.authorization.k8s.io/v1 ClusterRole: cluster-wide permissions, possibly aggregated
from other ClusterRoles by label."""

from __future__ import annotations

from typing import ClassVar

from timonel.api.errors import FieldError, required
from timonel.api.objects import Object
from timonel.api.validation import validate_label_selector
from timonel.kinds.base import Strategy
from timonel.kinds.rbac.policy import GROUP, rbac_name_problems, validate_policy_rule


class ClusterRoleStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "ClusterRole"
    plural: ClassVar[str] = "clusterroles"
    singular: ClassVar[str] = "clusterrole"
    namespaced: ClassVar[bool] = False

    def name_problems(self, name: str) -> list[str]:
        return rbac_name_problems(name)

    def validate(self, obj: Object) -> list[FieldError]:
        return self._validate(obj, allow_invalid_label_value=False)

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        # Selectors stored by older releases may keep invalid label values.
        allow = bool(_aggregation_errors(old, allow_invalid_label_value=False))
        return self._validate(new, allow_invalid_label_value=allow)

    def _validate(self, obj: Object, *, allow_invalid_label_value: bool) -> list[FieldError]:
        errors: list[FieldError] = []
        for i, rule in enumerate(obj.get("rules") or []):
            errors.extend(validate_policy_rule(rule, False, f"rules[{i}]"))
        errors.extend(_aggregation_errors(obj, allow_invalid_label_value=allow_invalid_label_value))
        return errors


def _aggregation_errors(obj: Object, *, allow_invalid_label_value: bool) -> list[FieldError]:
    rule = obj.get("aggregationRule")
    if rule is None:
        return []
    selectors = (rule or {}).get("clusterRoleSelectors") or []
    path = "aggregationRule.clusterRoleSelectors"
    if not selectors:
        return [
            required(
                path, "at least one clusterRoleSelector required if aggregationRule is non-nil"
            )
        ]
    errors: list[FieldError] = []
    for i, selector in enumerate(selectors):
        errors.extend(
            validate_label_selector(
                selector, f"{path}[{i}]", allow_invalid_label_value=allow_invalid_label_value
            )
        )
    return errors
