"""The `Strategy` every kind implements, and the generic behaviour most kinds share.

The generic REST handlers (apiserver/handlers.py) call a strategy in a fixed order:

    create:        default → prepare_for_create → validate (+ object meta) → store
    update:        default → prepare_for_update → validate_update → store
    status update: default → prepare_for_status_update → validate_status_update → store

A strategy never does I/O: it mutates or inspects the objects it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from timonel.api.errors import FieldError, forbidden
from timonel.api.objects import Object
from timonel.api.user import UserInfo
from timonel.api.validation import dns1123_subdomain_problems, validate_object_meta
from timonel.kinds.printing import creation_age

ALL_VERBS: tuple[str, ...] = (
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
)


@dataclass(frozen=True)
class Column:
    """A server-side table column (metav1.TableColumnDefinition)."""

    name: str
    type: str = "string"
    format: str = ""
    description: str = ""
    priority: int = 0

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        }


NAME_COLUMN = Column(
    "Name",
    format="name",
    description="Name must be unique within a namespace. Is required when creating resources, "
    "although some resources may allow a client to request the generation of an appropriate "
    "name automatically. Name is primarily intended for creation idempotence and configuration "
    "definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
)
AGE_COLUMN = Column(
    "Age",
    description="CreationTimestamp is a timestamp representing the server time when this object "
    "was created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
)
# What kube-apiserver prints for kinds without a printer of their own.
DEFAULT_COLUMNS: tuple[Column, ...] = (
    NAME_COLUMN,
    Column("Created At", type="date", description=AGE_COLUMN.description),
)


@dataclass(frozen=True)
class ScaleSpec:
    """Where a kind keeps what its `scale` subresource exposes (autoscaling/v1 Scale)."""

    spec_replicas: tuple[str, ...] = ("spec", "replicas")
    status_replicas: tuple[str, ...] = ("status", "replicas")
    # A path to a LabelSelector object (apps kinds) or to a selector string (CRDs); empty
    # when the kind has no selector (a CRD without labelSelectorPath).
    selector: tuple[str, ...] = ("spec", "selector")
    selector_is_string: bool = False
    # ReplicationControllers select with a plain label map.
    selector_is_map: bool = False


class Strategy:
    """Behaviour of one resource kind. Subclasses set the class attributes and override
    what differs; the defaults suit a spec/status kind with nothing special."""

    group: ClassVar[str] = ""
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = ""
    plural: ClassVar[str] = ""
    singular: ClassVar[str] = ""
    namespaced: ClassVar[bool] = True
    short_names: ClassVar[tuple[str, ...]] = ()
    categories: ClassVar[tuple[str, ...]] = ()
    verbs: ClassVar[tuple[str, ...]] = ALL_VERBS
    # Has a `status` subresource: the main endpoint ignores status changes and the
    # status endpoint ignores everything else.
    has_status: ClassVar[bool] = False
    scale: ClassVar[ScaleSpec | None] = None
    # metadata.generation is set to 1 on create and bumped when the spec changes.
    tracks_generation: ClassVar[bool] = False
    columns: ClassVar[tuple[Column, ...]] = DEFAULT_COLUMNS
    # Field selectors this kind supports beyond metadata.name and metadata.namespace.
    field_labels: ClassVar[tuple[str, ...]] = ()
    # Fields that may not change once set, as dotted paths ("spec.selector").
    immutable_fields: ClassVar[tuple[str, ...]] = ()
    # Create-only kinds (reviews) are answered, never stored.
    virtual: ClassVar[bool] = False
    # Kinds served in two groups over one store (events.k8s.io/v1 Event over core/v1
    # Event) name the (group, plural) whose keys they share and convert at the edge.
    storage_resource: ClassVar[tuple[str, str] | None] = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def name_problems(self, name: str) -> list[str]:
        return dns1123_subdomain_problems(name)

    # -- defaults and preparation -------------------------------------------------

    def default(self, obj: Object) -> None:
        """Fill defaults the way kube-apiserver's defaulting functions do."""

    def prepare_for_create(self, obj: Object) -> None:
        if self.has_status:
            obj.pop("status", None)
        if self.tracks_generation:
            obj.setdefault("metadata", {})["generation"] = 1

    def prepare_for_update(self, new: Object, old: Object) -> None:
        if self.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        if self.tracks_generation:
            meta = new.setdefault("metadata", {})
            generation = (old.get("metadata") or {}).get("generation", 1)
            meta["generation"] = generation + 1 if self.spec_changed(new, old) else generation

    def spec_changed(self, new: Object, old: Object) -> bool:
        return new.get("spec") != old.get("spec")

    def prepare_for_status_update(self, new: Object, old: Object) -> None:
        """Only status changes through the status subresource: everything else is the
        old object's (metadata too, except what the main endpoint owns anyway)."""
        for field in list(new):
            if field not in ("status", "metadata", "apiVersion", "kind"):
                new.pop(field)
        for field, value in old.items():
            if field not in ("status", "metadata", "apiVersion", "kind"):
                new[field] = value
        old_meta = old.get("metadata") or {}
        new_meta = new.setdefault("metadata", {})
        for field in ("labels", "annotations", "finalizers", "ownerReferences", "generation"):
            if field in old_meta:
                new_meta[field] = old_meta[field]
            else:
                new_meta.pop(field, None)

    # -- validation ---------------------------------------------------------------

    def validate_meta(self, obj: Object) -> list[FieldError]:
        return validate_object_meta(
            obj.get("metadata"), namespaced=self.namespaced, name_problems=self.name_problems
        )

    def validate(self, obj: Object) -> list[FieldError]:
        """Kind-specific validation of a new object (object metadata is checked apart)."""
        return []

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = self.validate(new)
        for path in self.immutable_fields:
            if _dig(new, path) != _dig(old, path):
                errors.append(forbidden(path, "field is immutable"))
        return errors

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        return []

    def warnings(self, obj: Object) -> list[str]:
        return []

    def respond(self, obj: Object, user: UserInfo) -> Object:
        """For `virtual` kinds (reviews): the answer to a create, never stored."""
        raise NotImplementedError(f"{self.kind} is not a virtual kind")

    # -- conversion for kinds that share another kind's store ----------------------

    def to_storage(self, obj: Object) -> Object:
        return obj

    def from_storage(self, obj: Object) -> Object:
        return obj

    # -- reading ------------------------------------------------------------------

    def table_row(self, obj: Object) -> list[Any]:
        """The cells of this object's row, one per column in `columns`."""
        meta = obj.get("metadata") or {}
        if self.columns is DEFAULT_COLUMNS:
            return [meta.get("name", ""), meta.get("creationTimestamp")]
        return [meta.get("name", ""), creation_age(obj)]

    def row_conditions(self, obj: Object) -> list[dict[str, str]] | None:
        """Row conditions (`Completed` marks finished pods)."""
        return None

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        """Field values that field selectors match against."""
        meta = obj.get("metadata") or {}
        fields = {"metadata.name": meta.get("name", "")}
        if self.namespaced:
            fields["metadata.namespace"] = meta.get("namespace", "")
        return fields


def _dig(obj: Object, dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def dig(obj: Any, *path: str, default: Any = None) -> Any:
    """obj[path[0]][path[1]]..., or `default` when any step is missing."""
    value = obj
    for part in path:
        if not isinstance(value, dict):
            return default
        value = value.get(part)
        if value is None:
            return default
    return value
