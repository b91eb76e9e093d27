"""Unknown fields, type errors and pruning, worded as kube-apiserver's decoder words them."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from timonel.schema.definitions import SchemaNode, kubernetes_definitions, schema_from_openapi
from timonel.schema.fields import (
    QUANTITY_FORMAT_ERROR,
    QUANTITY_SUFFIX_ERROR,
    check_object,
    go_base64_error,
    go_quote,
    prune_unknown,
    quantity_problem,
)


def kind_schema(group: str, version: str, kind: str) -> SchemaNode:
    node = kubernetes_definitions().for_kind(group, version, kind)
    assert node is not None
    return node


DEPLOYMENT = kind_schema("apps", "v1", "Deployment")
POD = kind_schema("", "v1", "Pod")
SECRET = kind_schema("", "v1", "Secret")


def deployment(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": None},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [{"containerPort": 80, "protocol": "TCP"}],
                            "env": [{"name": "A", "value": "1"}],
                            "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                        },
                        {"name": "sidecar", "image": "busybox"},
                    ],
                },
            },
            **spec,
        },
    }


def test_a_valid_deployment_has_nothing_to_report() -> None:
    check = check_object(DEPLOYMENT, deployment())
    assert check.ok
    assert check.unknown == [] and check.type_errors == []


def test_unknown_fields_are_named_by_their_full_path_with_list_indexes() -> None:
    obj = deployment(foo=1)
    obj["spec"]["template"]["spec"]["containers"][1]["imagePullPolcy"] = "Always"
    obj["spec"]["template"]["spec"]["containers"][0]["ports"][0]["hostPortt"] = 8080
    obj["metadata"]["labelz"] = {}
    obj["top"] = True

    check = check_object(DEPLOYMENT, obj)

    assert check.unknown == [
        "metadata.labelz",
        "spec.template.spec.containers[0].ports[0].hostPortt",
        "spec.template.spec.containers[1].imagePullPolcy",
        "spec.foo",
        "top",
    ]
    assert check.type_errors == []


def test_messages_for_strict_and_warn() -> None:
    check = check_object(DEPLOYMENT, deployment(foo=1, bar=2))
    assert check.unknown_field_messages() == [
        'unknown field "spec.foo"',
        'unknown field "spec.bar"',
    ]
    assert check.strict_error() == (
        'strict decoding error: unknown field "spec.foo", unknown field "spec.bar"'
    )


def test_status_error_depends_on_field_validation_for_unknown_fields_only() -> None:
    unknown = check_object(DEPLOYMENT, deployment(foo=1))
    strict = unknown.status_error("Deployment", "v1", "Strict")
    assert strict is not None
    assert strict.code == 400 and strict.reason == "BadRequest"
    assert strict.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: '
        'strict decoding error: unknown field "spec.foo"'
    )
    assert unknown.status_error("Deployment", "v1", "Warn") is None
    assert unknown.status_error("Deployment", "v1", "Ignore") is None

    mistyped = check_object(DEPLOYMENT, deployment(replicas="3"))
    error = mistyped.status_error("Deployment", "v1", "Ignore")
    assert error is not None and error.code == 400
    assert error.message == (
        'Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal '
        "string into Go struct field DeploymentSpec.spec.replicas of type int32"
    )


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda o: o["spec"].update(replicas="3"),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
            "of type int32",
        ),
        (
            lambda o: o["spec"].update(replicas=1.5),
            "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas "
            "of type int32",
        ),
        (
            lambda o: o["spec"].update(replicas=2**31),
            "json: cannot unmarshal number 2147483648 into Go struct field "
            "DeploymentSpec.spec.replicas of type int32",
        ),
        (
            lambda o: o["spec"].update(paused="yes"),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.paused of type bool",
        ),
        (
            lambda o: o["metadata"]["labels"].update(app=5),
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type "
            "string",
        ),
        (
            lambda o: o["metadata"].update(name=["a"]),
            "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.name of type string",
        ),
        (
            lambda o: o["spec"]["template"]["spec"].update(containers={"name": "x"}),
            "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers "
            "of type []v1.Container",
        ),
        (
            lambda o: o["spec"]["template"]["spec"]["containers"][0].update(image=7),
            "json: cannot unmarshal number into Go struct field "
            "Container.spec.template.spec.containers.image of type string",
        ),
        (
            lambda o: o["spec"].update(template="x"),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.template of type "
            "v1.PodTemplateSpec",
        ),
        (
            lambda o: o.update(spec=[]),
            "json: cannot unmarshal array into Go struct field Deployment.spec of type "
            "v1.DeploymentSpec",
        ),
    ],
)
def test_type_errors_use_go_decoder_wording(mutate: Any, message: str) -> None:
    obj = deployment()
    mutate(obj)
    assert check_object(DEPLOYMENT, obj).type_errors == [message]


def test_type_errors_and_unknown_fields_are_reported_apart() -> None:
    check = check_object(DEPLOYMENT, deployment(replicas="3", foo=1))
    assert check.unknown == ["spec.foo"]
    assert len(check.type_errors) == 1


def test_null_is_accepted_anywhere_in_a_builtin_kind() -> None:
    check = check_object(DEPLOYMENT, deployment(replicas=None, selector=None, strategy=None))
    assert check.ok


def test_a_body_that_is_not_an_object() -> None:
    check = check_object(DEPLOYMENT, ["x"])  # type: ignore[arg-type]
    assert check.type_errors == ["json: cannot unmarshal array into Go value of type v1.Deployment"]


@pytest.mark.parametrize("value", ["25%", 1, 0, "3"])
def test_int_or_string_takes_strings_and_integers(value: Any) -> None:
    obj = deployment()
    obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = value
    assert check_object(DEPLOYMENT, obj).ok


@pytest.mark.parametrize(
    ("value", "word"), [(True, "bool"), (1.5, "number 1.5"), ({}, "object"), ([], "array")]
)
def test_int_or_string_rejects_other_values_as_an_int32(value: Any, word: str) -> None:
    obj = deployment()
    obj["spec"]["strategy"]["rollingUpdate"]["maxSurge"] = value
    assert check_object(DEPLOYMENT, obj).type_errors == [
        f"json: cannot unmarshal {word} into Go struct field "
        "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32"
    ]


@pytest.mark.parametrize("value", ["500m", "1", 2, 0.5, "1.5Gi", "1e3", "+1k", "0"])
def test_quantities_accept_strings_and_numbers(value: Any) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = value
    assert check_object(DEPLOYMENT, obj).ok


@pytest.mark.parametrize("value", ["abc", "", "1Gb", True, {"a": 1}])
def test_malformed_quantities_fail_with_the_parser_message(value: Any) -> None:
    obj = deployment()
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = value
    assert check_object(DEPLOYMENT, obj).type_errors == [QUANTITY_FORMAT_ERROR]


def test_quantity_parser_distinguishes_bad_suffixes() -> None:
    assert quantity_problem("1kk") == QUANTITY_SUFFIX_ERROR
    assert quantity_problem("1e") == QUANTITY_SUFFIX_ERROR
    assert quantity_problem("1e-3") is None
    assert quantity_problem("-0.25Mi") is None


def test_a_failing_custom_decoder_wins_over_an_earlier_type_error() -> None:
    obj = deployment(replicas="3")
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "abc"
    assert check_object(DEPLOYMENT, obj).type_errors[0] == QUANTITY_FORMAT_ERROR


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        ("YWJj", None),
        ("YQ==", None),
        ("YWJj\nZGVm", None),
        ("abc", 0),
        ("abcde", 4),
        ("not base64!", 3),
        ("YQ=", 3),
        ("Y===", 1),
        ("YQ==x", 4),
    ],
)
def test_secret_data_must_be_base64(data: str, offset: int | None) -> None:
    assert go_base64_error(data) == offset
    check = check_object(SECRET, {"apiVersion": "v1", "kind": "Secret", "data": {"k": data}})
    expected = [] if offset is None else [f"illegal base64 data at input byte {offset}"]
    assert check.type_errors == expected


def test_secret_string_data_is_plain_text() -> None:
    assert check_object(SECRET, {"stringData": {"k": "not base64!"}}).ok


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-05-01T10:00:00Z", None),
        ("2024-05-01T10:00:00.5+02:00", None),
        (
            "yesterday",
            'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"',
        ),
        (
            "2024-05-01",
            'parsing time "2024-05-01" as "2006-01-02T15:04:05Z07:00": cannot parse "" as "T"',
        ),
        ("2024-13-01T00:00:00Z", 'parsing time "2024-13-01T00:00:00Z": month out of range'),
        ("2023-02-29T00:00:00Z", 'parsing time "2023-02-29T00:00:00Z": day out of range'),
        ("2024-05-01T10:00:00Zjunk", 'parsing time "2024-05-01T10:00:00Zjunk": extra text: "junk"'),
        (
            12,
            "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.creationTimestamp "
            "of type string",
        ),
    ],
)
def test_timestamps_are_rfc3339(value: Any, message: str | None) -> None:
    check = check_object(POD, {"metadata": {"creationTimestamp": value}})
    assert check.type_errors == ([] if message is None else [message])


def test_metadata_fields_are_checked_like_any_other() -> None:
    check = check_object(
        POD,
        {
            "metadata": {
                "name": "p",
                "namespace": "d",
                "nam": "x",
                "annotations": {"a": "b"},
                "finalizers": ["f"],
            }
        },
    )
    assert check.unknown == ["metadata.nam"]


def test_free_form_fields_are_not_descended() -> None:
    # managedFields[].fieldsV1 is a free-form object; anything goes below it.
    check = check_object(
        POD,
        {
            "metadata": {
                "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {"f:anything": {}}}}]
            }
        },
    )
    assert check.ok


def test_duplicate_unknown_paths_are_reported_once() -> None:
    check = check_object(POD, {"spec": {"containers": [{"name": "a", "x": 1}]}, "q": 1})
    assert check.unknown == ["spec.containers[0].x", "q"]


def test_prune_unknown_drops_unknown_fields_in_place_and_keeps_the_rest() -> None:
    obj = deployment(foo=1)
    obj["spec"]["template"]["spec"]["containers"][1]["imagePullPolcy"] = "Always"
    obj["metadata"]["labels"]["extra"] = "kept"  # map keys are never unknown
    expected = deployment()
    expected["metadata"]["labels"]["extra"] = "kept"

    prune_unknown(DEPLOYMENT, obj)

    assert obj == expected
    assert check_object(DEPLOYMENT, obj).ok


def test_checks_are_cached_and_fast() -> None:
    obj = deployment()
    check_object(DEPLOYMENT, obj)
    runs = 200
    started = time.perf_counter()
    for _ in range(runs):
        check_object(DEPLOYMENT, obj)
    per_check = (time.perf_counter() - started) / runs
    assert per_check < 0.001


def test_go_quote_escapes_like_strconv() -> None:
    assert go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert go_quote("tab\there") == '"tab\\there"'
    assert go_quote("\x01é") == '"\\x01é"'


# -- CRD structural schemas ---------------------------------------------------------------

CRONTAB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "cronSpec": {"type": "string"},
                "replicas": {"type": "integer"},
                "port": {"x-kubernetes-int-or-string": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "steps": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "partial": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": True,
                    "properties": {
                        "known": {"type": "object", "properties": {"a": {"type": "string"}}}
                    },
                },
                "empty": {"type": "object"},
                "template": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                },
                "optional": {"type": "string", "nullable": True},
                "plain": {"type": "string"},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}
CRONTAB = schema_from_openapi(
    CRONTAB_SCHEMA, group="stable.example.com", version="v1", kind="CronTab"
)


def crontab(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "stable.example.com/v1",
        "kind": "CronTab",
        "metadata": {"name": "c", "namespace": "default", "labels": {"a": "b"}},
        "spec": {"cronSpec": "* * * * */5", **spec},
    }


def test_crd_root_always_allows_type_meta_and_object_meta() -> None:
    assert CRONTAB.name == "com.example.stable.v1.CronTab"
    assert check_object(CRONTAB, crontab()).ok
    assert check_object(CRONTAB, {**crontab(), "metadata": {"name": "c", "bogus": 1}}).unknown == [
        "metadata.bogus"
    ]


def test_crd_unknown_fields_in_nested_objects_lists_and_maps() -> None:
    obj = crontab(
        foo=1,
        steps=[{"name": "a"}, {"name": "b", "extra": True}],
        labels={"any": "key"},
        empty={"x": 1},
        partial={"anything": {"goes": 1}, "known": {"a": "x", "b": "y"}},
        config={"deep": {"free": [1, 2]}},
    )
    check = check_object(CRONTAB, obj)
    assert check.unknown == [
        "spec.foo",
        "spec.steps[1].extra",
        "spec.empty.x",
        "spec.partial.known.b",
    ]


def test_crd_wrong_types_are_not_decoding_errors() -> None:
    # A custom resource decodes into unstructured JSON: types are checked by validation (422).
    check = check_object(CRONTAB, crontab(replicas="three", steps="x", port=True))
    assert check.ok


def test_crd_embedded_resources_carry_type_meta_and_object_meta() -> None:
    template = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "oops": 1},
        "spec": {"anything": 1},
        "other": 2,
    }
    check = check_object(CRONTAB, crontab(template=template))
    assert check.unknown == ["spec.template.metadata.oops", "spec.template.other"]


def test_crd_pruning_drops_unknown_fields_and_non_nullable_nulls() -> None:
    obj = crontab(
        foo=1,
        steps=[{"name": "a", "x": 1}],
        optional=None,
        plain=None,
        config={"kept": {"deep": None}},
        labels={"a": None},
    )
    obj["status"] = {"ready": True, "phase": "x"}
    pruned = copy.deepcopy(obj)

    prune_unknown(CRONTAB, pruned)

    assert pruned["spec"] == {
        "cronSpec": "* * * * */5",
        "steps": [{"name": "a"}],
        "optional": None,
        "config": {"kept": {"deep": None}},
        "labels": {},
    }
    assert pruned["status"] == {"ready": True}
    assert pruned["metadata"] == obj["metadata"]


def test_patch_errors_are_422_on_the_patch_field() -> None:
    obj = deployment(foo=1)
    check = check_object(DEPLOYMENT, obj)
    patched = '{"spec":{"foo":1}}'
    error = check.patch_status_error(patched, "Strict")
    assert error is not None
    assert error.code == 422 and error.reason == "Invalid"
    assert error.message == (
        ' "" is invalid: patch: Invalid value: "{\\"spec\\":{\\"foo\\":1}}": '
        'strict decoding error: unknown field "spec.foo"'
    )
    assert check.patch_status_error(patched, "Warn") is None
