"""Namespaces: cluster-scoped, named by DNS labels, Active until deleted.

kube-apiserver labels every namespace `kubernetes.io/metadata.name=<name>`, starts it
Active, and keeps the `kubernetes` finalizer in spec.finalizers (removed only through the
`finalize` subresource, by the namespace controller).
"""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError, invalid_value
from timonel.api.objects import Object
from timonel.api.validation import dns1123_label_problems
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import as_dict, as_list, as_str, validate_qualified_name
from timonel.kinds.printing import creation_age

NAME_LABEL = "kubernetes.io/metadata.name"
KUBERNETES_FINALIZER = "kubernetes"
STANDARD_FINALIZERS = frozenset({KUBERNETES_FINALIZER, "orphan", "foregroundDeletion"})


class NamespaceStrategy(Strategy):
    kind = "Namespace"
    plural = "namespaces"
    singular = "namespace"
    namespaced = False
    short_names = ("ns",)
    has_status = True
    # Namespaces are deleted one by one (their content first): no deletecollection.
    verbs = ("create", "delete", "get", "list", "patch", "update", "watch")
    field_labels = ("status.phase", "name")
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Status", description="The status of the namespace"),
        AGE_COLUMN,
    )

    def name_problems(self, name: str) -> list[str]:
        return dns1123_label_problems(name)

    def default(self, obj: Object) -> None:
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if name:
            labels = meta.get("labels")
            if not isinstance(labels, dict):
                labels = {}
                meta["labels"] = labels
            labels[NAME_LABEL] = name
        obj.setdefault("spec", {})
        status = obj.get("status")
        if not isinstance(status, dict):
            status = {}
            obj["status"] = status
        if not status.get("phase"):
            status["phase"] = "Active"

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"phase": "Active"}
        spec = obj.setdefault("spec", {})
        finalizers = spec.get("finalizers")
        if not isinstance(finalizers, list):
            finalizers = []
        if KUBERNETES_FINALIZER not in finalizers:
            finalizers.append(KUBERNETES_FINALIZER)
        spec["finalizers"] = finalizers

    def prepare_for_update(self, new: Object, old: Object) -> None:
        """spec.finalizers change only through `finalize`; status only through `status`."""
        spec = new.setdefault("spec", {})
        old_finalizers = as_dict(old.get("spec")).get("finalizers")
        if old_finalizers is None:
            spec.pop("finalizers", None)
        else:
            spec["finalizers"] = list(old_finalizers)
        new["status"] = dict(as_dict(old.get("status")))

    def prepare_for_finalize(self, new: Object, old: Object) -> None:
        """The `finalize` subresource owns spec.finalizers and nothing else."""
        finalizers = as_dict(new.get("spec")).get("finalizers")
        for field in list(new):
            if field not in ("metadata", "apiVersion", "kind"):
                new.pop(field)
        for field, value in old.items():
            if field not in ("metadata", "apiVersion", "kind"):
                new[field] = value
        new["spec"] = dict(as_dict(old.get("spec")))
        if finalizers is None:
            new["spec"].pop("finalizers", None)
        else:
            new["spec"]["finalizers"] = finalizers

    def validate(self, obj: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        for finalizer in as_list(as_dict(obj.get("spec")).get("finalizers")):
            errors += validate_finalizer_name(as_str(finalizer), "spec.finalizers")
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return []

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        phase = as_dict(new.get("status")).get("phase")
        if not as_dict(new.get("metadata")).get("deletionTimestamp"):
            if phase != "Active":
                return [
                    invalid_value(
                        "status.Phase",
                        phase or "",
                        "may only be 'Active' if `deletionTimestamp` is empty",
                    )
                ]
        elif phase != "Terminating":
            return [
                invalid_value(
                    "status.Phase",
                    phase or "",
                    "may only be 'Terminating' if `deletionTimestamp` is not empty",
                )
            ]
        return []

    def validate_finalize(self, new: Object, old: Object) -> list[FieldError]:
        errors: list[FieldError] = []
        for i, finalizer in enumerate(as_list(as_dict(new.get("spec")).get("finalizers"))):
            errors += validate_finalizer_name(as_str(finalizer), f"spec.finalizers[{i}]")
        return errors

    def table_row(self, obj: Object) -> list[Any]:
        meta = as_dict(obj.get("metadata"))
        return [
            meta.get("name", ""),
            as_str(as_dict(obj.get("status")).get("phase")),
            creation_age(obj),
        ]

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        fields["status.phase"] = as_str(as_dict(obj.get("status")).get("phase"))
        fields["name"] = as_str(as_dict(obj.get("metadata")).get("name"))
        return fields


def validate_finalizer_name(name: str, path: str) -> list[FieldError]:
    """A finalizer is a qualified name, and standard unless domain-prefixed."""
    errors = validate_qualified_name(name, path)
    if "/" not in name and name not in STANDARD_FINALIZERS:
        errors.append(
            invalid_value(
                path, name, "name is neither a standard finalizer name nor is it fully qualified"
            )
        )
    return errors
