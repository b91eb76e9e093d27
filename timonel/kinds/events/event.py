"""events.k8s.io/v1 Event: the newer shape of core/v1 Event, over the same store.

kube-apiserver keeps one internal Event and serves it in both groups; timonel stores the
core/v1 form and converts field by field at the edge, as pkg/apis/events/v1/conversion.go
does (note is message, regarding is involvedObject, the `deprecated*` fields are the core
source, firstTimestamp, lastTimestamp and count).

Writes through events.k8s.io/v1 get the strict validation of pkg/apis/core/validation
(events.go): eventTime, reportingController, reportingInstance, action and reason are
required, the deprecated fields must stay unset, and most fields are immutable. Error paths
name the core fields, as kube-apiserver's do (it validates the internal type).
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, ClassVar

from timonel.api.errors import FieldError, RawValue, invalid_value, required
from timonel.api.objects import Object, parse_rfc3339
from timonel.kinds.base import Column, Strategy
from timonel.kinds.core.event import EventStrategy as CoreEventStrategy
from timonel.kinds.core.event import event_row

GROUP = "events.k8s.io"
EVENT_TYPES = ("Normal", "Warning")
# The core/v1 strategy holds what both APIs share: the legacy validation every Event
# passes, the printer's columns and row, the field selectors.
CORE = CoreEventStrategy()

# (events.k8s.io/v1 field, core/v1 field) for the fields that only change name.
_RENAMED: tuple[tuple[str, str], ...] = (
    ("reason", "reason"),
    ("note", "message"),
    ("type", "type"),
    ("series", "series"),
    ("action", "action"),
    ("related", "related"),
    ("reportingController", "reportingComponent"),
    ("reportingInstance", "reportingInstance"),
    ("deprecatedCount", "count"),
)
# Go always serializes struct fields and fields without omitempty: the converters fill
# them (timestamps serialize as null when zero) and omit the other empty fields.


# What `_empty` calls empty: null, "", 0 (with false and 0.0, which equal it), {}, [].
_ZERO_VALUE_TYPES = (type(None), str, int, float, dict, list)


def _empty(value: Any) -> bool:
    return not value and isinstance(value, _ZERO_VALUE_TYPES)


def to_core_event(event: Object) -> Object:
    """events.k8s.io/v1 Event → core/v1 Event."""
    core: Object = {"apiVersion": "v1", "kind": "Event", "metadata": event.get("metadata") or {}}
    for new_name, core_name in _RENAMED:
        value = event.get(new_name)
        if not _empty(value):
            core[core_name] = value
    core["involvedObject"] = event.get("regarding") or {}
    core["source"] = event.get("deprecatedSource") or {}
    core["firstTimestamp"] = event.get("deprecatedFirstTimestamp") or None
    core["lastTimestamp"] = event.get("deprecatedLastTimestamp") or None
    core["eventTime"] = event.get("eventTime") or None
    core.setdefault("reportingComponent", "")
    core.setdefault("reportingInstance", "")
    return core


def from_core_event(core: Object) -> Object:
    """core/v1 Event → events.k8s.io/v1 Event."""
    event: Object = {
        "apiVersion": f"{GROUP}/v1",
        "kind": "Event",
        "metadata": core.get("metadata") or {},
    }
    for new_name, core_name in _RENAMED:
        value = core.get(core_name)
        if not _empty(value):
            event[new_name] = value
    event["regarding"] = core.get("involvedObject") or {}
    event["deprecatedSource"] = core.get("source") or {}
    event["deprecatedFirstTimestamp"] = core.get("firstTimestamp") or None
    event["deprecatedLastTimestamp"] = core.get("lastTimestamp") or None
    event["eventTime"] = core.get("eventTime") or None
    return event


def _as_core(event: Object) -> Object:
    """Either shape in, the core shape out (selectors and tables read core names)."""
    if str(event.get("apiVersion", "")).startswith(f"{GROUP}/") or "regarding" in event:
        return to_core_event(event)
    return event


class EventStrategy(Strategy):
    """events.k8s.io/v1 events, stored as core/v1 events."""

    group: ClassVar[str] = GROUP
    version: ClassVar[str] = "v1"
    kind: ClassVar[str] = "Event"
    plural: ClassVar[str] = "events"
    singular: ClassVar[str] = "event"
    short_names: ClassVar[tuple[str, ...]] = ("ev",)
    storage_resource: ClassVar[tuple[str, str] | None] = ("", "events")
    field_labels: ClassVar[tuple[str, ...]] = CoreEventStrategy.field_labels
    columns: ClassVar[tuple[Column, ...]] = CoreEventStrategy.columns

    def to_storage(self, obj: Object) -> Object:
        return to_core_event(obj)

    def from_storage(self, obj: Object) -> Object:
        return from_core_event(obj)

    def validate(self, obj: Object) -> list[FieldError]:
        core = to_core_event(obj)
        errors = CORE.validate(core)
        errors.extend(_validate_series(core))
        if not core.get("eventTime"):
            errors.append(required("eventTime"))
        if core.get("type") not in EVENT_TYPES:
            errors.append(invalid_value("type", "", f"has invalid value: {core.get('type') or ''}"))
        for name in ("firstTimestamp", "lastTimestamp", "count"):
            if core.get(name):
                errors.append(invalid_value(name, "", "needs to be unset"))
        source = core.get("source") or {}
        if source.get("component") or source.get("host"):
            errors.append(invalid_value("source", "", "needs to be unset"))
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        new_core, old_core = to_core_event(new), to_core_event(old)
        errors = CORE.validate(new_core)
        if new_core.get("series") != old_core.get("series"):
            errors.extend(_validate_series(new_core))
        # The order and the repeated `reason` are kube-apiserver's.
        for name in (
            "involvedObject",
            "reason",
            "message",
            "source",
            "firstTimestamp",
            "lastTimestamp",
            "count",
            "reason",
            "type",
            "eventTime",
            "action",
            "related",
            "reportingComponent",
            "reportingInstance",
        ):
            new_value, old_value = new_core.get(name), old_core.get(name)
            if _empty(new_value) and _empty(old_value):
                continue
            if new_value != old_value:
                errors.append(invalid_value(name, _go_value(name, new_value), "field is immutable"))
        return errors

    def table_row(self, obj: Object) -> list[Any]:
        return event_row(_as_core(obj))

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        return CORE.selectable_fields(_as_core(obj))


def _validate_series(core: Object) -> list[FieldError]:
    series = core.get("series")
    if not isinstance(series, dict):
        return []
    errors = []
    if (series.get("count") or 0) < 2:
        errors.append(invalid_value("series.count", "", "should be at least 2"))
    if not series.get("lastObservedTime"):
        errors.append(required("series.lastObservedTime"))
    return errors


# -- Go's rendering of immutable-field values ---------------------------------------------

_REFERENCE_FIELDS = (
    ("Kind", "kind"),
    ("Namespace", "namespace"),
    ("Name", "name"),
    ("UID", "uid"),
    ("APIVersion", "apiVersion"),
    ("ResourceVersion", "resourceVersion"),
    ("FieldPath", "fieldPath"),
)


def _go_value(name: str, value: Any) -> Any:
    """How apimachinery prints the new value of a changed immutable field."""
    if name in ("involvedObject", "related"):
        if value is None:
            return "null"  # apimachinery prints a nil pointer as the string "null"
        inner = ", ".join(f'{go}:"{(value or {}).get(js) or ""}"' for go, js in _REFERENCE_FIELDS)
        return RawValue(f"core.ObjectReference{{{inner}}}")
    if name == "source":
        source = value or {}
        return RawValue(
            f'core.EventSource{{Component:"{source.get("component") or ""}", Host:"{source.get("host") or ""}"}}'
        )
    if name in ("firstTimestamp", "lastTimestamp", "eventTime"):
        return RawValue(_go_time(value))
    if name == "count":
        return value or 0
    return value or ""


def _go_time(value: Any) -> str:
    """time.Time.String() of a UTC timestamp: "2024-05-01 10:00:00 +0000 UTC"."""
    if not value:
        return "0001-01-01 00:00:00 +0000 UTC"
    try:
        moment = parse_rfc3339(str(value)).astimezone(UTC)
    except ValueError:
        return str(value)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"
