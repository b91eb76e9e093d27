"""CustomResourceDefinition strategy: defaults, the status a new CRD gets, validation with
kube-apiserver's wording and internal field paths, immutable names."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from timonel.kinds.apiextensions.customresourcedefinition import CustomResourceDefinitionStrategy

STRATEGY = CustomResourceDefinitionStrategy()

# The CronTab CRD of the Kubernetes documentation.
CRONTAB = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              cronSpec:
                type: string
              image:
                type: string
              replicas:
                type: integer
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames:
    - ct
"""


def load(text: str = CRONTAB) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load(text)
    STRATEGY.default(obj)
    return obj


def created(text: str = CRONTAB) -> dict[str, Any]:
    obj = load(text)
    obj["metadata"].update(uid="u", creationTimestamp="2024-05-01T10:00:00Z")
    STRATEGY.prepare_for_create(obj)
    return obj


def messages(obj: dict[str, Any]) -> list[str]:
    return [e.message() for e in STRATEGY.validate_meta(obj) + STRATEGY.validate(obj)]


def test_defaults() -> None:
    obj = load()
    assert obj["spec"]["names"]["listKind"] == "CronTabList"
    assert obj["spec"]["conversion"] == {"strategy": "None"}
    bare = load(CRONTAB.replace("    singular: crontab\n", ""))
    assert bare["spec"]["names"]["singular"] == "crontab"
    once = load()
    STRATEGY.default(once)
    assert once == load()


def test_versions_serve_flags_default_to_false() -> None:
    obj = load(CRONTAB.replace("    served: true\n", ""))
    assert obj["spec"]["versions"][0]["served"] is False


def test_new_crd_is_established_at_once() -> None:
    obj = created()
    status = obj["status"]
    assert status["acceptedNames"] == {
        "kind": "CronTab",
        "listKind": "CronTabList",
        "plural": "crontabs",
        "shortNames": ["ct"],
        "singular": "crontab",
    }
    assert [(c["type"], c["status"], c["reason"], c["message"]) for c in status["conditions"]] == [
        ("NamesAccepted", "True", "NoConflicts", "no conflicts found"),
        ("Established", "True", "InitialNamesAccepted", "the initial names have been accepted"),
    ]
    assert status["storedVersions"] == ["v1"]
    assert obj["metadata"]["generation"] == 1
    assert messages(obj) == []


def test_update_keeps_status_adds_the_new_storage_version_and_counts_generations() -> None:
    old = created()
    new = copy.deepcopy(old)
    del new["status"]
    v2 = copy.deepcopy(new["spec"]["versions"][0])
    v2["name"] = "v2"
    new["spec"]["versions"][0]["storage"] = False
    new["spec"]["versions"].append(v2)
    STRATEGY.prepare_for_update(new, old)
    assert new["status"]["storedVersions"] == ["v1", "v2"]
    assert new["status"]["conditions"] == old["status"]["conditions"]
    assert new["metadata"]["generation"] == 2
    assert messages(new) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda o: o["metadata"].update(name="crontabs.example.com"),
            [
                'metadata.name: Invalid value: "crontabs.example.com": must be spec.names.plural+"."+spec.group'
            ],
        ),
        (
            lambda o: o["spec"].update(scope="Global"),
            ['spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'],
        ),
        (
            lambda o: o["spec"]["versions"][0].update(storage=False),
            [
                "spec.versions: Invalid value: []apiextensions.CustomResourceDefinitionVersion{"
                'apiextensions.CustomResourceDefinitionVersion{Name:"v1", Served:true, Storage:false}}: '
                "must have exactly one version marked as storage version",
                "status.storedVersions: Invalid value: []string(nil): must have at least one stored version",
            ],
        ),
        (
            lambda o: o["spec"]["versions"][0].pop("schema"),
            ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"],
        ),
        (
            lambda o: o["spec"]["names"].update(shortNames=["CT"]),
            [
                'spec.names.shortNames[0]: Invalid value: "CT": a DNS-1035 label must consist of lower case '
                "alphanumeric characters or '-', start with an alphabetic character, and end with an "
                "alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is "
                "'[a-z]([-a-z0-9]*[a-z0-9])?')"
            ],
        ),
        (
            lambda o: o["spec"]["names"].update(listKind="CronTab"),
            [
                'spec.names.listKind: Invalid value: "CronTab": kind and listKind may not be the same'
            ],
        ),
    ],
)
def test_validation_errors(edit: Any, expected: list[str]) -> None:
    obj = load()
    edit(obj)
    STRATEGY.default(obj)
    obj["metadata"]["uid"] = "u"
    STRATEGY.prepare_for_create(obj)
    assert messages(obj) == expected


def test_schema_errors_of_a_single_version_name_the_internal_validation() -> None:
    obj = load()
    schema = obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    schema["properties"]["spec"]["properties"]["replicas"] = {"minimum": 1}
    schema["properties"]["spec"]["properties"]["image"] = {"type": "str"}
    schema["properties"]["status"] = {"type": "array"}
    STRATEGY.prepare_for_create(obj)
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[spec].properties[replicas].type: Required value: "
        "must not be empty for specified object fields",
        "spec.validation.openAPIV3Schema.properties[status].items: Required value: must be specified",
        'spec.validation.openAPIV3Schema.properties[spec].properties[image].type: Unsupported value: "str": '
        'supported values: "array", "boolean", "integer", "number", "object", "string"',
    ]


def test_schema_errors_of_differing_versions_name_the_version() -> None:
    obj = load()
    v2 = copy.deepcopy(obj["spec"]["versions"][0])
    v2.update(name="v2", storage=False)
    v2["schema"]["openAPIV3Schema"]["properties"]["metadata"] = {
        "type": "object",
        "properties": {"labels": {"type": "object"}},
    }
    obj["spec"]["versions"].append(v2)
    STRATEGY.prepare_for_create(obj)
    assert messages(obj) == [
        "spec.versions[1].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything "
        "other than name and generateName, but metadata is implicitly specified"
    ]


def test_structural_rules() -> None:
    obj = load()
    obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"] = {
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "anyOf": [{"type": "object", "required": ["a"]}],
                "x-kubernetes-preserve-unknown-fields": False,
                "properties": {
                    "port": {
                        "x-kubernetes-int-or-string": True,
                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                    }
                },
            },
        },
    }
    STRATEGY.prepare_for_create(obj)
    assert messages(obj) == [
        "spec.validation.openAPIV3Schema.properties[spec].anyOf[0].type: Forbidden: must be empty to be structural",
        "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-preserve-unknown-fields: Invalid value: "
        "false: must be true or undefined",
    ]


def test_status_subresource_limits_the_root_schema() -> None:
    obj = load()
    obj["spec"]["versions"][0]["subresources"] = {"status": {}}
    obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["anyOf"] = [{"required": ["spec"]}]
    STRATEGY.prepare_for_create(obj)
    [message] = messages(obj)
    assert message.startswith("spec.validation.openAPIV3Schema: Invalid value: ")
    assert message.endswith(
        "fields are allowed at the root of the schema if the status subresource is enabled"
    )


@pytest.mark.parametrize(
    ("subresources", "expected"),
    [
        (
            {
                "scale": {
                    "specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas",
                }
            },
            [],
        ),
        (
            {"scale": {"statusReplicasPath": "status.replicas"}},
            [
                "spec.subresources.scale.specReplicasPath: Required value",
                'spec.subresources.scale.statusReplicasPath: Invalid value: "status.replicas": '
                "must be a simple json path starting with .",
            ],
        ),
        (
            {
                "scale": {
                    "specReplicasPath": ".status.replicas",
                    "statusReplicasPath": ".status.replicas",
                    "labelSelectorPath": ".metadata.labels",
                }
            },
            [
                'spec.subresources.scale.specReplicasPath: Invalid value: ".status.replicas": '
                "should be a json path under .spec",
                'spec.subresources.scale.labelSelectorPath: Invalid value: ".metadata.labels": '
                "should be a json path under either .spec or .status",
            ],
        ),
    ],
)
def test_scale_subresource_paths(subresources: dict[str, Any], expected: list[str]) -> None:
    obj = load()
    obj["spec"]["versions"][0]["subresources"] = subresources
    STRATEGY.prepare_for_create(obj)
    assert messages(obj) == expected


def test_printer_columns() -> None:
    obj = load()
    obj["spec"]["versions"][0]["additionalPrinterColumns"] = [
        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
        {"name": "Replicas", "type": "int", "jsonPath": "spec.replicas"},
    ]
    STRATEGY.prepare_for_create(obj)
    assert messages(obj) == [
        'spec.additionalPrinterColumns[1].type: Invalid value: "int": must be one of '
        "boolean,date,integer,number,string",
        'spec.additionalPrinterColumns[1].JSONPath: Invalid value: "spec.replicas": '
        "must be a simple json path starting with .",
    ]


def test_webhook_conversion() -> None:
    obj = load()
    obj["spec"]["conversion"] = {
        "strategy": "Webhook",
        "webhook": {
            "clientConfig": {"service": {"name": "converter", "namespace": "default"}},
            "conversionReviewVersions": ["v2"],
        },
    }
    STRATEGY.default(obj)
    assert obj["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 443
    STRATEGY.prepare_for_create(obj)
    assert messages(obj) == [
        'spec.conversion.conversionReviewVersions: Invalid value: []string{"v2"}: must include at least one of v1, v1beta1'
    ]
    obj["spec"]["conversion"] = {
        "strategy": "None",
        "webhook": {"clientConfig": {"url": "https://x"}},
    }
    assert messages(obj) == [
        "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook"
    ]


def test_protected_groups_need_api_approval() -> None:
    obj = created(CRONTAB.replace("stable.example.com", "widgets.k8s.io"))
    assert messages(obj) == [
        "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have "
        'approval annotation "api-approved.kubernetes.io", see https://github.com/kubernetes/enhancements/pull/1111'
    ]
    obj["metadata"]["annotations"] = {
        "api-approved.kubernetes.io": "https://github.com/kubernetes/kubernetes/pull/1"
    }
    assert messages(obj) == []


def test_names_and_scope_are_immutable_once_established() -> None:
    old = created()
    new = copy.deepcopy(old)
    new["spec"]["scope"] = "Cluster"
    new["spec"]["names"]["kind"] = "CronJobX"
    new["spec"]["names"]["plural"] = "crons"
    STRATEGY.prepare_for_update(new, old)
    assert [e.message() for e in STRATEGY.validate_update(new, old)] == [
        'spec.scope: Invalid value: "Cluster": field is immutable',
        'spec.names.kind: Invalid value: "CronJobX": field is immutable',
        'spec.names.plural: Invalid value: "crons": field is immutable',
    ]


def test_table_and_discovery_names() -> None:
    assert [c.name for c in STRATEGY.columns] == ["Name", "Created At"]
    assert STRATEGY.table_row(created()) == ["crontabs.stable.example.com", "2024-05-01T10:00:00Z"]
    assert STRATEGY.short_names == ("crd", "crds")
    assert (STRATEGY.namespaced, STRATEGY.has_status) == (False, True)
