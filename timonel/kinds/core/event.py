"""core/v1 Events: what components report about objects (the `kubectl get events` view).

An Event from the old API carries firstTimestamp/lastTimestamp/count; one from the new API
(events.k8s.io) carries eventTime, series, reportingController and reportingInstance. The
table shows either: Last Seen falls back to First Seen, which falls back to eventTime.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from timonel.api.errors import FieldError, invalid_value, required
from timonel.api.objects import Object
from timonel.api.validation import dns1123_subdomain_problems
from timonel.kinds.base import NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import as_dict, as_str, validate_qualified_name
from timonel.kinds.printing import age, field_description

REPORTING_INSTANCE_LIMIT = 128
ACTION_LIMIT = 128
REASON_LIMIT = 128
NOTE_LIMIT = 1024


def _doc(*path: str) -> str:
    return field_description("", "v1", "Event", *path)


class EventStrategy(Strategy):
    kind = "Event"
    plural = "events"
    singular = "event"
    short_names = ("ev",)
    field_labels = (
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name",
        "involvedObject.uid", "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type",
    )  # fmt: skip
    columns: ClassVar[tuple[Column, ...]] = (
        Column("Last Seen", description=_doc("lastTimestamp")),
        Column("Type", description=_doc("type")),
        Column("Reason", description=_doc("reason")),
        Column("Object", description=_doc("involvedObject")),
        Column("Subobject", priority=1, description=_doc("involvedObject", "fieldPath")),
        Column("Source", priority=1, description=_doc("source")),
        Column("Message", description=_doc("message")),
        Column("First Seen", priority=1, description=_doc("firstTimestamp")),
        Column("Count", priority=1, description=_doc("count")),
        Column("Name", priority=1, format="name", description=NAME_COLUMN.description),
    )

    def default(self, obj: Object) -> None:
        # What Go writes for an Event whatever was sent: zero times as null, the
        # reference and source structs, the two reporting strings.
        for field in ("eventTime", "firstTimestamp", "lastTimestamp"):
            obj.setdefault(field, None)
        for field in ("involvedObject", "source"):
            if not isinstance(obj.get(field), dict):
                obj[field] = {}
        for field in ("reportingComponent", "reportingInstance"):
            if not isinstance(obj.get(field), str):
                obj[field] = ""

    def validate(self, obj: Object) -> list[FieldError]:
        """legacyValidateEvent, the rules core/v1 requests get."""
        errors: list[FieldError] = []
        namespace = as_str(as_dict(obj.get("metadata")).get("namespace"))
        involved_namespace = as_str(as_dict(obj.get("involvedObject")).get("namespace"))
        if not obj.get("eventTime"):
            if not involved_namespace:
                if namespace not in ("", "default"):
                    errors.append(
                        invalid_value(
                            "involvedObject.namespace",
                            involved_namespace,
                            "does not match event.namespace",
                        )
                    )
            elif namespace != involved_namespace:
                errors.append(
                    invalid_value(
                        "involvedObject.namespace",
                        involved_namespace,
                        "does not match event.namespace",
                    )
                )
        else:
            if not involved_namespace and namespace not in ("default", "kube-system"):
                errors.append(
                    invalid_value(
                        "involvedObject.namespace",
                        involved_namespace,
                        "does not match event.namespace",
                    )
                )
            controller = as_str(obj.get("reportingComponent"))
            if not controller:
                errors.append(required("reportingComponent"))
            errors += validate_qualified_name(controller, "reportingComponent")
            for field, limit in (
                ("reportingInstance", REPORTING_INSTANCE_LIMIT),
                ("action", ACTION_LIMIT),
                ("reason", REASON_LIMIT),
            ):
                value = as_str(obj.get(field))
                if not value:
                    errors.append(required(field))
                if len(value) > limit:
                    errors.append(invalid_value(field, "", f"can have at most {limit} characters"))
            if len(as_str(obj.get("message"))) > NOTE_LIMIT:
                errors.append(
                    invalid_value("message", "", f"can have at most {NOTE_LIMIT} characters")
                )
        for problem in dns1123_subdomain_problems(namespace):
            errors.append(invalid_value("namespace", namespace, problem))
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new)

    def table_row(self, obj: Object) -> list[Any]:
        return event_row(obj)

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        involved = as_dict(obj.get("involvedObject"))
        source = as_str(as_dict(obj.get("source")).get("component")) or as_str(
            obj.get("reportingComponent")
        )
        fields.update(
            {
                "involvedObject.kind": as_str(involved.get("kind")),
                "involvedObject.namespace": as_str(involved.get("namespace")),
                "involvedObject.name": as_str(involved.get("name")),
                "involvedObject.uid": as_str(involved.get("uid")),
                "involvedObject.apiVersion": as_str(involved.get("apiVersion")),
                "involvedObject.resourceVersion": as_str(involved.get("resourceVersion")),
                "involvedObject.fieldPath": as_str(involved.get("fieldPath")),
                "reason": as_str(obj.get("reason")),
                "reportingComponent": as_str(obj.get("reportingComponent")),
                "source": source,
                "type": as_str(obj.get("type")),
            }
        )
        return fields


def event_row(event: Object, now: datetime | None = None) -> list[Any]:
    """printEvent, wide: Last Seen, Type, Reason, Object, Subobject, Source, Message,
    First Seen, Count, Name."""
    first_seen = age(event.get("firstTimestamp") or event.get("eventTime"), now)
    last_seen = age(event.get("lastTimestamp"), now) if event.get("lastTimestamp") else first_seen
    count = event.get("count") or 0
    series = event.get("series")
    if isinstance(series, dict):
        last_seen = age(series.get("lastObservedTime"), now)
        count = series.get("count") or 0
    elif not count:
        count = 1
    involved = as_dict(event.get("involvedObject"))
    kind = as_str(involved.get("kind")).lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    source = as_dict(event.get("source"))
    component = as_str(source.get("component")) or as_str(event.get("reportingComponent"))
    instance = as_str(source.get("host")) or as_str(event.get("reportingInstance"))
    return [
        last_seen,
        as_str(event.get("type")),
        as_str(event.get("reason")),
        target,
        as_str(involved.get("fieldPath")),
        f"{component}, {instance}" if instance else component,
        as_str(event.get("message")).strip(),
        first_seen,
        count,
        as_dict(event.get("metadata")).get("name", ""),
    ]
