"""Field ownership (`metadata.managedFields`) and server-side apply, as kube-apiserver keeps them.

Every write records who changed what:

    record_update(live, new, ...)   a create, update or non-apply patch (operation Update):
                                    the manager gains the fields it added or changed, the
                                    other managers lose them and anything removed
    apply(live, config, ...)        a server-side apply (operation Apply): the configuration
                                    is merged into the live object, fields this manager
                                    applied before and no longer applies are removed unless
                                    someone else owns them, and changing a field another
                                    manager owns is a 409 Conflict unless forced

Field sets follow structured-merge-diff: list-maps are owned per item (`k:{"name":"nginx"}`),
sets per value (`v:"x"`), atomic lists and maps as a whole. Fields Kubernetes never tracks
(apiVersion, kind, metadata.name, namespace, uid, resourceVersion, generation,
creationTimestamp, selfLink, managedFields) are left out, and so are the fields the kind's
strategy resets (`reset_fields`: status on the main resource of a kind with a status
subresource, spec on the status subresource).

The caller defaults the object before `record_update` (the update compares defaulted
objects, so defaults are owned by whoever caused them) and after `apply` (an applier owns
only what it applied).
"""

from __future__ import annotations

import copy
import functools
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from timonel.api.errors import StatusError, bad_request
from timonel.api.objects import Object, parse_rfc3339
from timonel.patch._gofmt import go_json, go_quote, json_equal
from timonel.patch.fieldpath import FieldSet, Path, field_element, parse_element, path_string
from timonel.patch.patchtypes import FIELD_MANAGER_MAX_LENGTH, printable
from timonel.patch.typed import (
    Shape,
    compare,
    created_fields_v1,
    ensure_named_fields_are_members,
    merge,
    remove_items,
    shape_of,
    strip_none,
    to_field_set,
    validate,
)
from timonel.schema.definitions import SchemaNode

LAST_APPLIED_ANNOTATION: Final = "kubectl.kubernetes.io/last-applied-configuration"
MAX_UPDATE_MANAGERS: Final = 10
BEFORE_FIRST_APPLY: Final = "before-first-apply"
ANCIENT_CHANGES: Final = "ancient-changes"
# The manager whose apply also keeps the client-side-apply annotation in step.
_KUBECTL: Final = "kubectl"

# Never part of anyone's field set.
_STRIPPED: Final = FieldSet.of(
    (field_element("apiVersion"),),
    (field_element("kind"),),
    (field_element("metadata"),),
    *(
        (field_element("metadata"), field_element(name))
        for name in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        )
    ),
)


_METADATA: Final = field_element("metadata")
_STRIPPED_AT_ROOT: Final = tuple(sorted(_STRIPPED.members))
_STRIPPED_IN_METADATA: Final = tuple(sorted(_STRIPPED.children[_METADATA].members))
_UNTRACKED_AT_ROOT: Final = frozenset({"apiVersion", "kind"})
_UNTRACKED_IN_METADATA: Final = frozenset(pe[2:] for pe in _STRIPPED_IN_METADATA)
_SCALAR_TYPES: Final = (str, int, float, bool, type(None))


@dataclass(frozen=True, order=True)
class ManagerId:
    """Who owns a field set: appliers are one identity across versions, updaters one per version."""

    manager: str
    operation: str
    api_version: str = ""
    subresource: str = ""

    @classmethod
    def for_apply(cls, manager: str, subresource: str = "") -> ManagerId:
        return cls(manager, "Apply", "", subresource)

    @classmethod
    def for_update(cls, manager: str, api_version: str, subresource: str = "") -> ManagerId:
        return cls(manager, "Update", api_version, subresource)

    def key(self) -> str:
        """The identifier kube-apiserver sorts and groups managers by (JSON of the entry)."""
        parts = [f'"manager":{go_json(self.manager)}'] if self.manager else []
        parts.append(f'"operation":{go_json(self.operation)}')
        if self.api_version:
            parts.append(f'"apiVersion":{go_json(self.api_version)}')
        if self.subresource:
            parts.append(f'"subresource":{go_json(self.subresource)}')
        return "{" + ",".join(parts) + "}"

    def describe(self) -> str:
        """How a conflict names the manager: `"kubectl-client-side-apply" using apps/v1`."""
        text = go_quote(self.manager)
        if self.subresource:
            text += f" with subresource {go_quote(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text


class ManagedEntry:
    """One manager's fields, the version they were written in, and when. An entry read
    from a stored object (which this server wrote) keeps its encoded form, parses its
    fields only when they are asked for, and is written back as it was read while nothing
    changes it: most entries pass through an update untouched."""

    __slots__ = ("_fields", "_time", "api_version", "encoded")

    def __init__(
        self,
        fields: FieldSet | None,
        api_version: str,
        time: str | None = None,
        *,
        encoded: dict[str, Any] | None = None,
    ) -> None:
        if fields is None and encoded is None:
            raise ValueError("a managed entry needs its fields or their encoded form")
        self._fields = fields
        self._time = time
        self.api_version = api_version
        self.encoded = encoded

    @property
    def fields(self) -> FieldSet:
        if self._fields is None:
            assert self.encoded is not None
            self._fields = FieldSet.from_fields_v1(self.encoded["fieldsV1"])
        return self._fields

    @fields.setter
    def fields(self, value: FieldSet) -> None:
        self._fields = value
        self.encoded = None

    @property
    def time(self) -> str | None:
        return self._time

    @time.setter
    def time(self, value: str | None) -> None:
        self._time = value
        self.encoded = None

    def copy(self) -> ManagedEntry:
        return ManagedEntry(self.fields.copy(), self.api_version, self.time)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ManagedEntry):
            return NotImplemented
        return (self.fields, self.api_version, self.time) == (
            other.fields,
            other.api_version,
            other.time,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ManagedEntry({self.fields!r}, {self.api_version!r}, {self.time!r})"


Managers = dict[ManagerId, ManagedEntry]


# -- public helpers ----------------------------------------------------------------------


def manager_name(field_manager: str | None, user_agent: str | None) -> str:
    """The manager of a write: the fieldManager parameter, else the User-Agent up to its
    first `/` (`kubectl`, `python-requests`, `Go-http-client`), printable, 128 bytes at most."""
    if field_manager:
        return field_manager
    prefix = (user_agent or "").split("/", 1)[0]
    out: list[str] = []
    size = 0
    for char in prefix:
        if not printable(char):
            continue
        width = len(char.encode())
        if size + width > FIELD_MANAGER_MAX_LENGTH:
            break
        out.append(char)
        size += width
    return "".join(out)


def reset_fields_for(*, has_status: bool, subresource: str = "") -> tuple[tuple[str, ...], ...]:
    """The fields a kind's strategy resets on a write, as dotted paths split into tuples:
    status through the main endpoint of a kind with a status subresource, spec through status."""
    if subresource == "status":
        return (("spec",),)
    if has_status and not subresource:
        return (("status",),)
    return ()


def fields_v1(
    obj: Object, schema: SchemaNode | None, *, reset_fields: Iterable[tuple[str, ...]] = ()
) -> dict[str, Any]:
    """The FieldsV1 trie of the fields `obj` sets, as an Apply entry records them."""
    value = _without_managed_fields(obj)
    fields = to_field_set(value, shape_of(schema))
    return _owned(fields, _reset_set(reset_fields)).to_fields_v1()


def decode_managed_fields(entries: Any) -> Managers:
    """Parse `metadata.managedFields`; raises ValueError worded as kube-apiserver words it."""
    managers: Managers = {}
    if entries is None:
        return managers
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise ValueError(f"managed fields entry {index} must be an object")
        operation = entry.get("operation")
        if operation not in ("Apply", "Update"):
            raise ValueError("operation must be `Apply` or `Update`")
        api_version = entry.get("apiVersion") or ""
        if not api_version:
            raise ValueError("apiVersion must not be empty")
        fields_type = entry.get("fieldsType") or ""
        if fields_type == "":
            raise ValueError(f"missing fieldsType in managed fields entry {index}")
        if fields_type != "FieldsV1":
            raise ValueError(
                f"invalid fieldsType {go_quote(str(fields_type))} in managed fields entry {index}"
            )
        manager = str(entry.get("manager") or "")
        subresource = str(entry.get("subresource") or "")
        if operation == "Apply":
            identity = ManagerId.for_apply(manager, subresource)
        else:
            identity = ManagerId.for_update(manager, str(api_version), subresource)
        try:
            fields = FieldSet.from_fields_v1(entry.get("fieldsV1") or {})
        except (ValueError, json.JSONDecodeError) as error:
            raise ValueError(
                f"error decoding versioned set from {go_json(entry)}: {error}"
            ) from error
        time = entry.get("time")
        managers[identity] = ManagedEntry(fields, str(api_version), _normalize_time(time))
    return managers


def _decode_stored(entries: Any) -> Managers:
    """A stored object's managed fields, which this server encoded: each entry kept as
    read and parsed only when needed (see ManagedEntry). Anything not in the form
    `encode_managed_fields` writes goes through `decode_managed_fields` instead."""
    if not isinstance(entries, list):
        return _decode_or_empty(entries)
    managers: Managers = {}
    for entry in entries:
        if not _is_encoded_form(entry):
            return _decode_or_empty(entries)
        manager = entry.get("manager", "")
        subresource = entry.get("subresource", "")
        if entry["operation"] == "Apply":
            identity = ManagerId.for_apply(manager, subresource)
        else:
            identity = ManagerId.for_update(manager, entry["apiVersion"], subresource)
        managers[identity] = ManagedEntry(
            None, entry["apiVersion"], entry.get("time"), encoded=entry
        )
    return managers


def _is_encoded_form(entry: Any) -> bool:
    """Whether `entry` is exactly as `encode_managed_fields` writes one."""
    if not isinstance(entry, dict) or entry.get("fieldsType") != "FieldsV1":
        return False
    keys = list(entry)
    expected = ["operation", "apiVersion", "fieldsType", "fieldsV1"]
    if entry.get("manager"):
        expected.insert(0, "manager")
    time = entry.get("time")
    if time:
        expected.insert(expected.index("fieldsType"), "time")
        if not isinstance(time, str) or _normalize_time(time) != time:
            return False
    if entry.get("subresource"):
        expected.append("subresource")
    return (
        keys == expected
        and entry["operation"] in ("Apply", "Update")
        and isinstance(entry["apiVersion"], str)
        and bool(entry["apiVersion"])
        and isinstance(entry.get("manager", ""), str)
        and isinstance(entry.get("subresource", ""), str)
        and isinstance(entry["fieldsV1"], dict)
        and _elements_parse(entry["fieldsV1"])
    )


def _elements_parse(fields: dict[str, Any]) -> bool:
    """Whether the top level of a FieldsV1 trie parses (the levels below are parsed
    when an update touches them; this server wrote them from parsed sets)."""
    try:
        for text in fields:
            if text != ".":
                parse_element(text)
    except ValueError:
        return False
    return True


def encode_managed_fields(managers: Mapping[ManagerId, ManagedEntry]) -> list[dict[str, Any]]:
    """`metadata.managedFields`, sorted as kube-apiserver sorts them: Apply before Update,
    then oldest first, then by manager, version and subresource."""
    entries: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for identity, entry in managers.items():
        order = (
            identity.operation,
            _seconds(entry.time),
            identity.manager,
            entry.api_version,
            identity.subresource,
        )
        if entry.encoded is not None:
            entries.append((order, dict(entry.encoded)))  # unchanged since it was read
            continue
        encoded = _encoded_entry(
            identity, entry.api_version, entry.time, entry.fields.to_fields_v1()
        )
        entries.append((order, encoded))
    entries.sort(key=lambda pair: pair[0])
    return [encoded for _, encoded in entries]


def _encoded_entry(
    identity: ManagerId, api_version: str, time: str | None, fields: dict[str, Any]
) -> dict[str, Any]:
    """One managedFields entry, its keys in the order kube-apiserver writes them."""
    encoded: dict[str, Any] = {}
    if identity.manager:
        encoded["manager"] = identity.manager
    encoded["operation"] = identity.operation
    encoded["apiVersion"] = api_version
    if time:
        encoded["time"] = time
    encoded["fieldsType"] = "FieldsV1"
    encoded["fieldsV1"] = fields
    if identity.subresource:
        encoded["subresource"] = identity.subresource
    return encoded


# -- Update ------------------------------------------------------------------------------


class _SecondClock:
    """now_rfc3339 formatted once per second: every write stamps its managed fields."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
            self._second = second
        return self._text


_now_seconds = _SecondClock()


def record_update(
    live: Object | None,
    new: Object,
    *,
    manager: str,
    api_version: str,
    schema: SchemaNode | None,
    subresource: str = "",
    reset_fields: Iterable[tuple[str, ...]] = (),
    now: str | None = None,
) -> None:
    """Set `new`'s managedFields after a non-apply write of `live` (None on create).

    The managed fields to start from are the ones the request carries, or the live ones
    when it carries none (a request through a subresource always starts from the live ones;
    `managedFields: []` clears them). An existing object without managed fields stays
    untracked, as in kube-apiserver.
    """
    new_meta = new.get("metadata")
    if not isinstance(new_meta, dict):
        new_meta = new["metadata"] = {}
    requested = new_meta.pop("managedFields", None)
    identity = ManagerId.for_update(manager, api_version, subresource)
    moment = now or _now_seconds()
    try:
        updated = _record(live, new, requested, identity, schema, subresource, reset_fields, moment)
    except ValueError:
        # A stored entry that does not parse after all: read them all as a request's.
        updated = _record(
            live, new, requested, identity, schema, subresource, reset_fields, moment, eager=True
        )
    if updated:
        new_meta["managedFields"] = encode_managed_fields(updated)


def _record(
    live: Object | None,
    new: Object,
    requested: Any,
    identity: ManagerId,
    schema: SchemaNode | None,
    subresource: str,
    reset_fields: Iterable[tuple[str, ...]],
    now: str,
    *,
    eager: bool = False,
) -> Managers:
    live_meta = (live or {}).get("metadata") or {}
    live_entries = live_meta.get("managedFields")
    live_managers = _decode_or_empty(live_entries) if eager else _decode_stored(live_entries)
    if subresource:
        managers = live_managers
    elif isinstance(requested, list) and (not requested or requested == [{}]):
        managers = {}
    elif requested is None or requested == live_entries:
        managers = live_managers  # what decoding the request's would give
    else:
        managers = _decode_or_empty(requested) or live_managers
    creating = live is None or not live_meta.get("uid")
    if not managers and not creating:
        return {}
    if live is None and not managers:
        created = _created(new, identity, shape_of(schema), tuple(reset_fields), now)
        if created is not None:
            return created
    updated = _update(
        _without_managed_fields(live) if live is not None else {},
        new,
        managers,
        identity,
        shape_of(schema),
        _reset_set(reset_fields),
        now,
    )
    _cap_update_managers(updated)
    return updated


def _update(
    live: Any,
    new: Any,
    managers: Managers,
    identity: ManagerId,
    shape: Shape,
    reset: FieldSet,
    now: str,
) -> Managers:
    """structured-merge-diff's Update under kube-apiserver's wrappers: the changes are
    computed as a throwaway manager, taken from everyone else, then given to `identity`."""
    comparison = compare(live, new, shape).exclude(reset)
    result: Managers = {}
    changed = comparison.modified.union(comparison.added)
    touched = changed.union(comparison.removed)
    restamped = _restamped(managers, identity, changed, comparison.removed, touched, now)
    if restamped is not None:
        return restamped
    for other, entry in managers.items():
        if entry.encoded is not None:
            encoded_fields = entry.encoded["fieldsV1"]
            if encoded_fields and "." not in encoded_fields and _untouched(encoded_fields, touched):
                result[other] = entry  # nothing it owns changed: kept without parsing it
                continue
        remaining = entry.fields.difference(changed).difference(comparison.removed)
        if not remaining.empty():
            result[other] = ManagedEntry(remaining, entry.api_version, entry.time)
    gained = changed.difference(_STRIPPED)
    if not gained.empty():
        previous = result.get(identity)
        fields = gained if previous is None else gained.union(previous.fields)
        result[identity] = ManagedEntry(fields, identity.api_version, now)
    return result


def _created(
    new: Any, identity: ManagerId, shape: Shape, reset: tuple[tuple[str, ...], ...], now: str
) -> Managers | None:
    """Update's result for a create nobody managed before (the manager gains every field
    the object sets), encoded in one walk of the object. None when a reset field is
    nested (no kind has one): `_update` handles that."""
    if any(len(path) != 1 for path in reset):
        return None
    view = _without_untracked_scalars(new)
    for (name,) in reset:
        view.pop(name, None)  # reset with all below it: not walked at all
    fields = created_fields_v1(view, shape)
    for pe in _STRIPPED_AT_ROOT:
        _drop_member(fields, pe)
    meta = fields.get(_METADATA)
    if meta:
        for pe in _STRIPPED_IN_METADATA:
            _drop_member(meta, pe)
        if not meta:
            del fields[_METADATA]
    if not fields:
        return {}
    encoded = _encoded_entry(identity, identity.api_version, now, fields)
    return {identity: ManagedEntry(None, identity.api_version, now, encoded=encoded)}


def _without_untracked_scalars(obj: Object) -> Object:
    """`obj` without the scalar fields nobody owns (apiVersion, kind, metadata.name, ...):
    they would only be walked to be dropped again. Other values stay (see `_drop_member`)."""
    view = {
        name: value
        for name, value in obj.items()
        if name not in _UNTRACKED_AT_ROOT or type(value) not in _SCALAR_TYPES
    }
    meta = view.get("metadata")
    if type(meta) is dict:
        view["metadata"] = {
            name: value
            for name, value in meta.items()
            if name not in _UNTRACKED_IN_METADATA or type(value) not in _SCALAR_TYPES
        }
    return view


def _drop_member(fields: dict[str, Any], pe: str) -> None:
    """FieldSet.difference of one member on a FieldsV1 trie: the field goes, the fields
    below it stay. (A member without children is `{}`, one with children carries `.`.)"""
    body = fields.get(pe)
    if body is None:
        return
    if not body:
        del fields[pe]
    elif "." in body:
        del body["."]


def _restamped(
    managers: Managers,
    identity: ManagerId,
    changed: FieldSet,
    removed: FieldSet,
    touched: FieldSet,
    now: str,
) -> Managers | None:
    """Update's result, read from the encoded entries, for the common repeat write (a
    Lease renewal, a status heartbeat): `identity` changes only fields it already owns and
    nobody else owns what the write touches. The entries stay as they are but for
    `identity`'s time. None when the write is not of that kind."""
    own = managers.get(identity)
    if own is None or own.encoded is None or not own.time or changed.empty():
        return None
    own_fields = own.encoded["fieldsV1"]
    if (
        not isinstance(own_fields, dict)
        or "." in own_fields
        or not _owns(own_fields, changed)
        or not _untouched(own_fields, removed)
        or changed.difference(_STRIPPED) != changed
    ):
        return None
    result: Managers = {}
    for other, entry in managers.items():
        if other == identity:
            restamped = dict(own.encoded)
            restamped["time"] = now
            result[other] = ManagedEntry(None, own.api_version, now, encoded=restamped)
            continue
        fields = None if entry.encoded is None else entry.encoded["fieldsV1"]
        if not fields or "." in fields or not _untouched(fields, touched):
            return None
        result[other] = entry
    return result


def _owns(encoded: Any, fields: FieldSet) -> bool:
    """Whether the FieldsV1 trie `encoded` names every field of `fields` itself."""
    if not isinstance(encoded, dict):
        return False
    for pe in fields.members:
        body = encoded.get(pe)
        if not isinstance(body, dict) or (body and "." not in body):
            return False
    return all(_owns(encoded.get(pe), below) for pe, below in fields.children.items())


def _untouched(encoded: Any, touched: FieldSet) -> bool:
    """Whether taking `touched` away from the FieldsV1 trie `encoded` leaves it as it is
    (FieldSet.difference: a member goes, and so does whatever a child set below it names),
    read from the trie without parsing it. False for anything not shaped as a trie."""
    if not isinstance(encoded, dict):
        return False
    for pe in touched.members:
        body = encoded.get(pe)
        if body is not None and (not isinstance(body, dict) or not body or "." in body):
            return False  # the entry owns this very field
    for pe, below in touched.children.items():
        body = encoded.get(pe)
        if body and not _untouched(body, below):
            return False
    return True


def _cap_update_managers(managers: Managers) -> None:
    """Keep at most ten Update entries by folding the oldest into `ancient-changes`."""
    updaters = [identity for identity in managers if identity.operation == "Update"]
    if len(updaters) <= MAX_UPDATE_MANAGERS:
        return
    updaters.sort(key=lambda identity: (_seconds(managers[identity].time), identity.key()))
    first_by_version: dict[str, ManagerId] = {}
    count = len(updaters)
    for identity in updaters:
        if count <= MAX_UPDATE_MANAGERS:
            break
        entry = managers[identity]
        version = entry.api_version
        bucket = ManagerId.for_update(ANCIENT_CHANGES, version)
        first = first_by_version.get(version)
        if first is None or identity == bucket:
            first_by_version.setdefault(version, identity)
            continue
        if bucket not in managers:
            managers[bucket] = managers.pop(first)
        merged = entry.fields.union(managers[bucket].fields)
        managers[bucket] = ManagedEntry(merged, version, entry.time)
        del managers[identity]
        count -= 1


# -- Apply -------------------------------------------------------------------------------


class _Conflicts(Exception):
    def __init__(self, conflicts: list[tuple[ManagerId, Path]]) -> None:
        super().__init__(f"{len(conflicts)} conflicts")
        self.conflicts = conflicts

    def status_error(self) -> StatusError:
        return conflict_error(self.conflicts)


def conflict_error(conflicts: list[tuple[ManagerId, Path]]) -> StatusError:
    """409 Conflict with one FieldManagerConflict cause per conflicting field."""
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {identity.describe()}",
            "field": path_string(path),
        }
        for identity, path in conflicts
    ]
    if len(conflicts) == 1:
        identity, path = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {identity.describe()}: {path_string(path)}"
    else:
        grouped: dict[ManagerId, list[Path]] = {}
        for identity, path in conflicts:
            grouped.setdefault(identity, []).append(path)
        lines: list[str] = []
        for identity in sorted(grouped, key=ManagerId.key):
            lines.append(f"conflicts with {identity.describe()}:")
            lines.extend(f"- {path_string(path)}" for path in grouped[identity])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return StatusError(409, "Conflict", message, details={"causes": causes})


def apply(
    live: Object | None,
    config: Object,
    *,
    manager: str,
    force: bool,
    api_version: str,
    schema: SchemaNode | None,
    subresource: str = "",
    kind: str = "",
    reset_fields: Iterable[tuple[str, ...]] = (),
    now: str | None = None,
) -> Object:
    """Server-side apply `config` to `live` (None when the object does not exist yet).

    Returns the new object (not yet defaulted) with its managedFields set. `kind`, when
    given, must match the configuration's kind. Raises StatusError: 400 for a configuration
    of another type or carrying managedFields, 500 when it does not fit the schema (as
    kube-apiserver answers), 409 Conflict when it changes fields other managers own.
    """
    _check_type(config, api_version, kind)
    config_meta = config.get("metadata")
    if isinstance(config_meta, dict) and isinstance(config_meta.get("managedFields"), list):
        raise bad_request("metadata.managedFields must be nil")
    shape = shape_of(schema)
    reset = _reset_set(reset_fields)
    try:
        managers = decode_managed_fields(((live or {}).get("metadata") or {}).get("managedFields"))
    except ValueError as error:
        raise StatusError(500, "", f"failed to decode managed fields: {error}") from error
    problems = validate(config, shape)
    if problems:
        joined = problems[0] if len(problems) == 1 else "errors:\n  " + "\n  ".join(problems)
        raise StatusError(
            500, "", f"failed to create typed patch object ({_describe(config)}): {joined}"
        )
    live_value = _without_managed_fields(live) if live is not None else {}
    config = copy.deepcopy(config)
    when = now or _now_seconds()
    if not managers and live is not None:
        managers = _update(
            {},
            live_value,
            {},
            ManagerId.for_update(BEFORE_FIRST_APPLY, api_version, subresource),
            shape,
            reset,
            when,
        )
    identity = ManagerId.for_apply(manager, subresource)
    try:
        result, updated = _apply_once(
            live_value, config, managers, identity, api_version, force, shape, reset, when
        )
    except _Conflicts as conflicts:
        if manager != _KUBECTL:
            raise conflicts.status_error() from None
        allowed = _allowed_by_last_applied(live_value, api_version, shape)
        if allowed is None:
            raise conflicts.status_error() from None
        remaining = [(who, path) for who, path in conflicts.conflicts if not allowed.has(path)]
        if remaining:
            raise conflict_error(remaining) from None
        result, updated = _apply_once(
            live_value, config, managers, identity, api_version, True, shape, reset, when
        )
    result = copy.deepcopy(result)
    meta = result.setdefault("metadata", {})
    if updated:
        meta["managedFields"] = encode_managed_fields(updated)
    if manager == _KUBECTL:
        _keep_last_applied_in_step(result, config)
    return result


def _apply_once(
    live: Object,
    config: Object,
    managers: Managers,
    identity: ManagerId,
    api_version: str,
    force: bool,
    shape: Shape,
    reset: FieldSet,
    now: str,
) -> tuple[Object, Managers]:
    merged = merge(live, config, shape)
    working: Managers = {who: entry.copy() for who, entry in managers.items()}
    last = working.get(identity)
    applied = to_field_set(config, shape).recursive_difference(reset)
    working[identity] = ManagedEntry(applied, api_version, last.time if last else None)
    pruned = _prune(merged, working, identity, last.fields if last else None, shape)
    working = _take_ownership(live, pruned, working, identity, force, shape, reset)
    own = working.get(identity)
    if own is not None:
        own.fields = own.fields.difference(_STRIPPED)
        if own.fields.empty():
            del working[identity]
        elif not json_equal(strip_none(live), pruned):
            own.time = now
    return pruned, working


def _prune(
    merged: Object, managers: Managers, identity: ManagerId, last: FieldSet | None, shape: Shape
) -> Object:
    """Remove what `identity` applied last time and no longer applies, unless owned."""
    if last is None or last.empty():
        return merged
    last_named = ensure_named_fields_are_members(last, shape)
    pruned = remove_items(merged, last_named, shape)
    owned = FieldSet()
    for entry in managers.values():
        owned = owned.union(entry.fields)
    merged_set = _named(merged, shape)
    keep = _named(pruned, shape).union(ensure_named_fields_are_members(owned, shape))
    pruned = remove_items(merged, merged_set.difference(keep), shape)
    dangling = merged_set.difference(_named(pruned, shape)).intersection(last_named)
    result: Object = remove_items(merged, dangling, shape)
    return result


def _named(value: Any, shape: Shape) -> FieldSet:
    return ensure_named_fields_are_members(to_field_set(value, shape), shape)


def _take_ownership(
    live: Object,
    new: Object,
    managers: Managers,
    identity: ManagerId,
    force: bool,
    shape: Shape,
    reset: FieldSet,
) -> Managers:
    """Fields `identity` changes leave their other owners (or conflict); removed fields leave everyone."""
    comparison = compare(live, new, shape).exclude(reset)
    changed = comparison.modified.union(comparison.added)
    conflicts: list[tuple[ManagerId, Path]] = []
    taken: dict[ManagerId, FieldSet] = {}
    for other in sorted(managers, key=ManagerId.key):
        if other == identity:
            continue
        overlap = managers[other].fields.intersection(changed)
        if not overlap.empty():
            taken[other] = overlap
            conflicts.extend((other, path) for path in overlap.paths())
    if conflicts and not force:
        raise _Conflicts(conflicts)
    result: Managers = {}
    for other, entry in managers.items():
        fields = entry.fields
        if other != identity:
            if other in taken:
                fields = fields.difference(taken[other])
            fields = fields.difference(comparison.removed)
        if not fields.empty():
            result[other] = ManagedEntry(fields, entry.api_version, entry.time)
    return result


def _allowed_by_last_applied(live: Object, api_version: str, shape: Shape) -> FieldSet | None:
    """Fields kubectl may take over from client-side apply without conflict: those its
    last-applied annotation sets to the values the object still has."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    text = annotations.get(LAST_APPLIED_ANNOTATION)
    if not isinstance(text, str) or not text:
        return None
    try:
        last_applied = json.loads(text)
    except ValueError:
        return None
    if not isinstance(last_applied, dict) or last_applied.get("apiVersion") != api_version:
        return None
    if validate(last_applied, shape):
        return None
    fields = to_field_set(last_applied, shape)
    changes = compare(last_applied, live, shape)
    return fields.difference(changes.modified).difference(changes.added).difference(changes.removed)


def _keep_last_applied_in_step(result: Object, config: Object) -> None:
    """After `kubectl apply --server-side`, an object that carries the client-side-apply
    annotation gets it rewritten to the applied configuration."""
    annotations = (result.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict) or not annotations.get(LAST_APPLIED_ANNOTATION):
        return
    applied = copy.deepcopy(config)
    applied_meta = applied.get("metadata")
    if isinstance(applied_meta, dict) and isinstance(applied_meta.get("annotations"), dict):
        applied_meta["annotations"].pop(LAST_APPLIED_ANNOTATION, None)
    annotations[LAST_APPLIED_ANNOTATION] = go_json(applied) + "\n"


# -- small helpers -----------------------------------------------------------------------


def _check_type(config: Object, api_version: str, kind: str) -> None:
    applied_version = config.get("apiVersion")
    applied_kind = config.get("kind")
    if applied_version != api_version or (kind and applied_kind != kind):
        raise bad_request(f"invalid object type: {_gvk_string(applied_version, applied_kind)}")


def _gvk_string(api_version: Any, kind: Any) -> str:
    version_text = api_version if isinstance(api_version, str) else ""
    group, _, version = version_text.rpartition("/")
    if version_text.count("/") > 1:
        group, version = "", ""
    return f"{group}/{version}, Kind={kind if isinstance(kind, str) else ''}"


def _describe(obj: Object) -> str:
    """objectGVKNN: `default/nginx; apps/v1, Kind=Deployment`."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return (
        f"{meta.get('namespace') or ''}/{meta.get('name') or ''}; "
        f"{_gvk_string(obj.get('apiVersion'), obj.get('kind'))}"
    )


def _decode_or_empty(entries: Any) -> Managers:
    try:
        return decode_managed_fields(entries)
    except ValueError:
        return {}


def _without_managed_fields(obj: Object | None) -> Object:
    if obj is None:
        return {}
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or "managedFields" not in meta:
        return obj
    trimmed = dict(obj)
    trimmed["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return trimmed


def _reset_set(paths: Iterable[tuple[str, ...]]) -> FieldSet:
    """The set of `paths`, built once per distinct tuple (every write asks for one of
    three); only ever read, never changed."""
    key = tuple(paths)
    found = _RESET_SETS.get(key)
    if found is None:
        found = FieldSet.of(*(tuple(field_element(part) for part in path) for path in key))
        if len(_RESET_SETS) < 64:
            _RESET_SETS[key] = found
    return found


_RESET_SETS: dict[tuple[tuple[str, ...], ...], FieldSet] = {}


def _owned(fields: FieldSet, reset: FieldSet) -> FieldSet:
    return fields.recursive_difference(reset).difference(_STRIPPED)


def _normalize_time(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return _normalized_time_text(value)


@functools.lru_cache(maxsize=1024)
def _normalized_time_text(value: str) -> str:
    """Entries of many objects carry the same few seconds: each is parsed once."""
    try:
        parsed = parse_rfc3339(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _seconds(value: str | None) -> int:
    if not value:
        return 0
    return _seconds_of(value)


@functools.lru_cache(maxsize=1024)
def _seconds_of(value: str) -> int:
    try:
        parsed = parse_rfc3339(value)
    except ValueError:
        return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int((parsed - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds())
