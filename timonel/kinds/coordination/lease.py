"""coordination.k8s.io/v1 Lease: node heartbeats and leader election."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError, forbidden, invalid_value, not_supported
from timonel.api.objects import Object
from timonel.api.validation import qualified_name_problems
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.printing import creation_age, field_description

GROUP = "coordination.k8s.io"
# Strategies named without a domain prefix are Kubernetes-defined.
LEASE_STRATEGIES = ("OldestEmulationVersion",)


class LeaseStrategy(Strategy):
    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "Lease"
    plural: ClassVar[str] = "leases"
    singular: ClassVar[str] = "lease"
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Holder", description=field_description(GROUP, "v1", "Lease", "spec", "holderIdentity")
        ),
        AGE_COLUMN,
    )

    def validate(self, obj: Object) -> list[FieldError]:
        spec = obj.get("spec") or {}
        errors: list[FieldError] = []
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and duration <= 0:
            errors.append(
                invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0")
            )
        transitions = spec.get("leaseTransitions")
        if transitions is not None and transitions < 0:
            errors.append(
                invalid_value(
                    "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
                )
            )
        strategy = spec.get("strategy")
        if strategy is not None:
            errors.extend(validate_lease_strategy(str(strategy), "spec.strategy"))
        if spec.get("preferredHolder") and not strategy:
            errors.append(
                forbidden("spec.preferredHolder", "may only be specified if `strategy` is defined")
            )
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new)

    def table_row(self, obj: Object) -> list[Any]:
        meta = obj.get("metadata") or {}
        holder = (obj.get("spec") or {}).get("holderIdentity") or ""
        return [meta.get("name", ""), holder, creation_age(obj)]


def validate_lease_strategy(strategy: str, path: str) -> list[FieldError]:
    """ValidateCoordinatedLeaseStrategy. kube-apiserver appends "strategy" to the path it is
    given, so a Lease's errors read `spec.strategy.strategy`; clients see that path."""
    path = f"{path}.strategy"
    if "/" not in strategy:
        if strategy not in LEASE_STRATEGIES:
            return [not_supported(path, strategy, list(LEASE_STRATEGIES))]
        return []
    return [invalid_value(path, strategy, p) for p in qualified_name_problems(strategy)]
