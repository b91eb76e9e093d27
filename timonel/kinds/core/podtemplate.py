"""PodTemplates: a stored pod template; its generation counts template changes."""

from __future__ import annotations

from typing import Any, ClassVar

from timonel.api.errors import FieldError
from timonel.api.objects import Object
from timonel.kinds.base import NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import as_dict, as_list, as_str
from timonel.kinds.core.podspec import default_pod_template, validate_pod_template
from timonel.kinds.printing import format_map_selector


def container_cells(containers: Any) -> tuple[str, str]:
    """layoutContainerCells: the names and the images of the containers, comma-separated."""
    names = [as_str(as_dict(c).get("name")) for c in as_list(containers)]
    images = [as_str(as_dict(c).get("image")) for c in as_list(containers)]
    return ",".join(names), ",".join(images)


def format_labels(labels: Any) -> str:
    """labels.FormatLabels: sorted `key=value` pairs, or `<none>`."""
    return format_map_selector(labels)


class PodTemplateStrategy(Strategy):
    kind = "PodTemplate"
    plural = "podtemplates"
    singular = "podtemplate"
    tracks_generation = True
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column("Containers", description="Names of each container in the template."),
        Column("Images", description="Images referenced by each container in the template."),
        Column("Pod Labels", description="The labels for the pod template."),
    )

    def default(self, obj: Object) -> None:
        template = obj.get("template")
        if not isinstance(template, dict):
            template = {}
            obj["template"] = template
        default_pod_template(template)

    def spec_changed(self, new: Object, old: Object) -> bool:
        return new.get("template") != old.get("template")

    def validate(self, obj: Object) -> list[FieldError]:
        return validate_pod_template(obj.get("template"), "template")

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        return self.validate(new)

    def table_row(self, obj: Object) -> list[Any]:
        template = as_dict(obj.get("template"))
        names, images = container_cells(as_dict(template.get("spec")).get("containers"))
        labels = as_dict(template.get("metadata")).get("labels")
        return [as_dict(obj.get("metadata")).get("name", ""), names, images, format_labels(labels)]
