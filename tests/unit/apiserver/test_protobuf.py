"""Decoding kubectl's protobuf request bodies into the JSON form of the same object.

The fixtures under testdata/protobuf are real bodies: `<name>.bin` is what kubectl 1.32
sent, `<name>.json` what kubectl 1.31 sent as JSON for the same command (see
capture_kubectl_protobuf.py). Other cases build bodies by hand with the field numbers of
the published generated.proto files.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from timonel.api.errors import StatusError
from timonel.apiserver import protobuf
from timonel.apiserver.protobuf_messages import ANY_VERSION_KINDS, KINDS

TESTDATA = Path(__file__).parent / "testdata" / "protobuf"
FIXTURES = sorted(path.stem for path in TESTDATA.glob("*.bin"))


# --- a minimal encoder for hand-built bodies ------------------------------------------------


def varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers go out as 10-byte two's complement, as in Go
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def num(number: int, value: int) -> bytes:
    return key(number, 0) + varint(value)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return key(number, 2) + varint(len(data)) + data


def entry(number: int, map_key: str, value: bytes | str) -> bytes:
    return ld(number, ld(1, map_key) + ld(2, value))


def envelope(api_version: str, kind: str, raw: bytes, *extra: bytes) -> bytes:
    type_meta = ld(1, api_version) + ld(2, kind)
    return b"k8s\x00" + ld(1, type_meta) + ld(2, raw) + ld(3, "") + ld(4, "") + b"".join(extra)


def bad_request(body: bytes) -> StatusError:
    with pytest.raises(StatusError) as caught:
        protobuf.decode(body)
    assert caught.value.code == 400
    assert caught.value.reason == "BadRequest"
    return caught.value


# --- real kubectl bodies --------------------------------------------------------------------


def test_fixtures_cover_every_kubectl_protobuf_command() -> None:
    expected = {
        "deployment", "configmap", "secret", "secret-docker-registry", "namespace", "service",
        "service-nodeport", "job", "job-from-cronjob", "cronjob", "serviceaccount", "role",
        "rolebinding", "clusterrole", "clusterrole-aggregated", "clusterrolebinding", "quota",
        "pdb", "priorityclass", "ingress", "hpa", "token", "selfsubjectaccessreview",
        "selfsubjectaccessreview-subresource", "selfsubjectaccessreview-nonresource",
        "selfsubjectrulesreview", "selfsubjectreview", "pod-debug-copy", "deleteoptions-drain",
        "deleteoptions-drain-dry-run",
    }  # fmt: skip
    assert set(FIXTURES) == expected
    assert all((TESTDATA / f"{name}.json").exists() for name in FIXTURES)


@pytest.mark.parametrize("name", FIXTURES)
def test_kubectl_body_decodes_to_its_json_form(name: str) -> None:
    body = (TESTDATA / f"{name}.bin").read_bytes()
    expected = json.loads((TESTDATA / f"{name}.json").read_text())

    decoded = protobuf.decode(body)

    assert decoded == expected
    # Go writes struct fields in declaration order; the decoded keys come out the same way.
    assert json.dumps(decoded) == json.dumps(expected)


def test_deployment_keeps_pointer_zero_and_drops_empty_strings() -> None:
    decoded = protobuf.decode((TESTDATA / "deployment.bin").read_bytes())
    # The wire has empty namespace, uid, ... (Go writes non-pointer strings); JSON omits them.
    assert decoded["metadata"] == {
        "name": "hello",
        "creationTimestamp": None,
        "labels": {"app": "hello"},
    }
    assert decoded["spec"]["strategy"] == {}  # a struct held by value is always written
    assert decoded["spec"]["template"]["spec"]["containers"][0]["resources"] == {}


def test_rich_pod_spec_survives_the_round_trip_through_kubectl() -> None:
    pod = protobuf.decode((TESTDATA / "pod-debug-copy.bin").read_bytes())
    spec = pod["spec"]
    web = spec["containers"][0]
    assert web["livenessProbe"]["httpGet"]["port"] == "http"  # IntOrString as a string
    assert web["readinessProbe"]["tcpSocket"]["port"] == 8080  # IntOrString as a number
    assert web["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}
    assert web["env"][1] == {"name": "EMPTY"}
    assert spec["volumes"][2] == {
        "name": "scratch",
        "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"},
    }
    assert spec["securityContext"]["supplementalGroups"] == [4000, 5000]
    assert spec["tolerations"][0]["tolerationSeconds"] == 300
    assert spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0][
        "namespaces"
    ] == ["data"]
    assert spec["initContainers"][0]["restartPolicy"] == "Always"


# --- hand-built bodies ----------------------------------------------------------------------


def test_eviction_with_delete_options() -> None:
    preconditions = ld(1, "uid-1") + ld(2, "42")
    delete_options = num(1, 0) + ld(2, preconditions) + ld(4, "Foreground") + ld(5, "All")
    raw = ld(1, ld(1, "web-1") + ld(3, "default")) + ld(2, delete_options)

    decoded = protobuf.decode(envelope("policy/v1", "Eviction", raw))

    assert decoded == {
        "kind": "Eviction",
        "apiVersion": "policy/v1",
        "metadata": {"name": "web-1", "namespace": "default", "creationTimestamp": None},
        "deleteOptions": {
            "gracePeriodSeconds": 0,  # a pointer: written when set, even to zero
            "preconditions": {"uid": "uid-1", "resourceVersion": "42"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"],
        },
    }


def test_certificate_approval_with_bytes_and_times() -> None:
    # The body of `kubectl certificate approve`: the whole CSR with an added condition.
    spec = ld(1, b"-----BEGIN CERTIFICATE REQUEST-----") + ld(
        7, "kubernetes.io/kube-apiserver-client"
    )
    spec += ld(5, "client auth") + entry(6, "scopes", ld(1, "a"))
    approved = (
        ld(1, "Approved") + ld(6, "True") + ld(2, "KubectlApprove") + ld(4, num(1, 1735689600))
    )
    status = ld(1, approved) + ld(2, b"")  # an empty certificate: omitempty leaves it out
    raw = ld(1, ld(1, "csr1") + ld(6, "3")) + ld(2, spec) + ld(3, status)

    decoded = protobuf.decode(envelope("certificates.k8s.io/v1", "CertificateSigningRequest", raw))

    assert decoded["spec"] == {
        "request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0=",
        "signerName": "kubernetes.io/kube-apiserver-client",
        "usages": ["client auth"],
        "extra": {"scopes": ["a"]},
    }
    assert decoded["status"] == {
        "conditions": [
            {
                "type": "Approved",
                "status": "True",
                "reason": "KubectlApprove",
                "lastUpdateTime": "2025-01-01T00:00:00Z",
                "lastTransitionTime": None,  # a Time held by value is written even when zero
            }
        ]
    }
    empty = protobuf.decode(envelope("certificates.k8s.io/v1", "CertificateSigningRequest", b""))
    assert empty["spec"] == {"request": None, "signerName": ""}  # a nil []byte is null


@pytest.mark.parametrize("api_version", ["v1", "apps/v1", "meta.k8s.io/v1", "policy/v1"])
def test_delete_options_decode_under_any_group_version(api_version: str) -> None:
    raw = num(3, 1) + ld(4, "Orphan")
    assert protobuf.decode(envelope(api_version, "DeleteOptions", raw)) == {
        "kind": "DeleteOptions",
        "apiVersion": api_version,
        "orphanDependents": True,
        "propagationPolicy": "Orphan",
    }


def test_absent_fields_take_their_go_zero_form() -> None:
    decoded = protobuf.decode(envelope("apps/v1", "Deployment", b""))
    assert decoded == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"creationTimestamp": None},
        "spec": {
            "selector": None,  # *LabelSelector without omitempty
            "template": {"metadata": {"creationTimestamp": None}, "spec": {"containers": None}},
            "strategy": {},
        },
        "status": {},
    }


def test_times_are_rfc3339_in_utc_to_the_second() -> None:
    created = num(1, 1714558830) + num(2, 999_999_999)
    deleted = num(1, 1714558830) + num(2, 1_500_000_000)  # nanoseconds past a second carry over
    raw = ld(1, ld(1, "x") + ld(8, created) + ld(9, deleted) + num(10, 30))
    metadata = protobuf.decode(envelope("v1", "ConfigMap", raw))["metadata"]
    assert metadata == {
        "name": "x",
        "creationTimestamp": "2024-05-01T10:20:30Z",
        "deletionTimestamp": "2024-05-01T10:20:31Z",
        "deletionGracePeriodSeconds": 30,
    }


def test_go_zero_time_is_null_and_out_of_range_time_is_rejected() -> None:
    go_zero = num(1, -62135596800)
    raw = ld(1, ld(8, go_zero))
    assert (
        protobuf.decode(envelope("v1", "ConfigMap", raw))["metadata"]["creationTimestamp"] is None
    )

    error = bad_request(envelope("v1", "ConfigMap", ld(1, ld(8, num(1, 1 << 62)))))
    assert "ConfigMap.metadata.creationTimestamp" in error.message


def test_negative_and_overlong_integers_follow_go_conversions() -> None:
    pod_spec = num(25, -5) + num(5, -(1 << 40)) + num(4, (1 << 32) + 7)
    spec = protobuf.decode(envelope("v1", "Pod", ld(2, pod_spec)))["spec"]
    assert spec["priority"] == -5  # int32 from a 10-byte varint
    assert spec["activeDeadlineSeconds"] == -(1 << 40)  # int64
    assert spec["terminationGracePeriodSeconds"] == (1 << 32) + 7


def test_repeated_integers_may_be_packed_or_not() -> None:
    unpacked = num(4, 4000) + num(4, 5000)
    packed = ld(4, varint(4000) + varint(5000))
    for security_context in (unpacked, packed):
        raw = ld(2, ld(14, security_context))
        spec = protobuf.decode(envelope("v1", "Pod", raw))["spec"]
        assert spec["securityContext"] == {"supplementalGroups": [4000, 5000]}


def test_int_or_string() -> None:
    # ServicePort: 1 name, 2 protocol, 3 port, 4 targetPort
    by_name = ld(1, "http") + ld(2, "TCP") + num(3, 80) + ld(4, num(1, 1) + ld(3, "web"))
    by_number = num(3, 81) + ld(4, num(1, 0) + num(2, 8081))
    raw = ld(2, ld(1, by_name) + ld(1, by_number))
    ports = protobuf.decode(envelope("v1", "Service", raw))["spec"]["ports"]
    assert ports == [
        {"name": "http", "protocol": "TCP", "port": 80, "targetPort": "web"},
        {"port": 81, "targetPort": 8081},
    ]

    impossible = ld(2, ld(1, num(3, 80) + ld(4, num(1, 2))))
    assert "impossible IntOrString" in bad_request(envelope("v1", "Service", impossible)).message


def test_maps_sort_keys_keep_the_last_duplicate_and_fill_missing_values() -> None:
    raw = (
        entry(2, "z", b"\x00\xff")
        + entry(2, "a", b"first")
        + entry(2, "a", b"second")
        + ld(2, ld(1, "empty"))  # an entry without a value
        + ld(3, "Opaque")
    )
    decoded = protobuf.decode(envelope("v1", "Secret", raw))
    assert decoded["data"] == {"a": "c2Vjb25k", "empty": "", "z": "AP8="}
    assert list(decoded["data"]) == ["a", "empty", "z"]
    assert decoded["type"] == "Opaque"


def test_quantities_are_kept_as_sent_and_absent_ones_are_zero() -> None:
    hard = entry(1, "cpu", ld(1, "1")) + entry(1, "pods", b"")
    decoded = protobuf.decode(envelope("v1", "ResourceQuota", ld(2, hard)))
    assert decoded["spec"]["hard"] == {"cpu": "1", "pods": "0"}


def test_extra_values_are_string_lists() -> None:
    user_info = ld(1, "alice") + ld(3, "devs") + entry(4, "scopes", ld(1, "a") + ld(1, "b"))
    decoded = protobuf.decode(
        envelope("authentication.k8s.io/v1", "SelfSubjectReview", ld(2, ld(1, user_info)))
    )
    assert decoded["status"]["userInfo"] == {
        "username": "alice",
        "groups": ["devs"],
        "extra": {"scopes": ["a", "b"]},
    }


def test_managed_fields_carry_their_json_verbatim() -> None:
    managed = (
        ld(1, "kubectl")
        + ld(2, "Update")
        + ld(6, "FieldsV1")
        + ld(7, ld(1, b'{"f:data":{".":{}}}'))
    )
    raw = ld(1, ld(1, "x") + ld(17, managed))
    metadata = protobuf.decode(envelope("v1", "ConfigMap", raw))["metadata"]
    assert metadata["managedFields"] == [
        {
            "manager": "kubectl",
            "operation": "Update",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {".": {}}},
        }
    ]

    broken = ld(1, ld(17, ld(7, ld(1, b"{not json"))))
    assert "not JSON" in bad_request(envelope("v1", "ConfigMap", broken)).message


def test_unknown_fields_of_every_wire_type_are_skipped() -> None:
    unknown = (
        num(90, 7)
        + key(91, 1) + b"\x00" * 8
        + key(92, 5) + b"\x00" * 4
        + ld(93, b"\xff\xff")
        + key(94, 3) + num(1, 1) + key(95, 3) + key(95, 4) + key(94, 4)
    )  # fmt: skip
    raw = ld(1, ld(1, "x") + unknown) + unknown + entry(2, "a", "b")
    assert protobuf.decode(envelope("v1", "ConfigMap", raw)) == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "x", "creationTimestamp": None},
        "data": {"a": "b"},
    }


def test_a_message_sent_twice_is_merged_and_a_scalar_sent_twice_keeps_the_last() -> None:
    raw = (
        ld(1, ld(1, "first"))
        + ld(2, num(1, 2))
        + ld(1, ld(1, "second") + ld(3, "ns"))
        + ld(2, num(5, 9))
    )
    decoded = protobuf.decode(envelope("apps/v1", "Deployment", raw))
    assert decoded["metadata"] == {"name": "second", "namespace": "ns", "creationTimestamp": None}
    assert decoded["spec"]["replicas"] == 2
    assert decoded["spec"]["minReadySeconds"] == 9


def test_invalid_utf8_becomes_the_replacement_character() -> None:
    raw = ld(1, ld(1, b"caf\xc3"))
    assert protobuf.decode(envelope("v1", "Namespace", raw))["metadata"]["name"] == "caf\ufffd"


# --- malformed bodies -----------------------------------------------------------------------


def test_bad_magic() -> None:
    error = bad_request(b'{"kind":"Pod"}')
    assert "expected prefix [107 56 115 0]" in error.message


def test_unknown_kind() -> None:
    error = bad_request(envelope("apps/v1", "StatefulSet", b""))
    assert error.message.endswith('no kind "StatefulSet" is registered for version "apps/v1"')
    bad_request(envelope("", "DeleteOptions", b""))


def test_compressed_raw_is_rejected() -> None:
    body = envelope("v1", "ConfigMap", b"") + ld(3, "gzip")
    assert "contentEncoding" in bad_request(body).message


def test_wrong_wire_type_names_the_field() -> None:
    raw = ld(2, ld(1, "two"))  # replicas as a string
    error = bad_request(envelope("apps/v1", "Deployment", raw))
    assert (
        "Deployment.spec: field 1 (replicas) has wire type length-delimited, expected varint"
        in error.message
    )


@pytest.mark.parametrize(
    ("body", "wording"),
    [
        (b"k8s\x00\x0a", "end of data inside a varint"),
        (b"k8s\x00\x0a\x05ab", "5 bytes announced, 2 left"),
        (b"k8s\x00" + b"\x08" + b"\xff" * 11, "longer than 10 bytes"),
        (b"k8s\x00\x00", "illegal field number 0"),
        (b"k8s\x00\x0e", "illegal wire type 6"),
        (b"k8s\x00\x0c", "unexpected end-group key"),
        (b"k8s\x00\x0b\x08\x01", "end of data inside group 1"),
    ],
)
def test_malformed_wire_data(body: bytes, wording: str) -> None:
    assert wording in bad_request(body).message


def _decodes_or_bad_request(body: bytes) -> None:
    try:
        result = protobuf.decode(body)
    except StatusError as exc:
        assert exc.code == 400, exc.message
    else:
        assert isinstance(result, dict)


@pytest.mark.parametrize(
    "name", ["deployment", "pod-debug-copy", "token", "selfsubjectaccessreview"]
)
def test_every_truncation_is_a_bad_request_or_a_smaller_object(name: str) -> None:
    body = (TESTDATA / f"{name}.bin").read_bytes()
    for length in range(len(body)):
        _decodes_or_bad_request(body[:length])


def test_random_corruption_never_escapes_as_another_exception() -> None:
    rng = random.Random(1332)
    bodies = [(TESTDATA / f"{name}.bin").read_bytes() for name in FIXTURES]
    for _ in range(5000):
        body = bytearray(rng.choice(bodies))
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(4, len(body))
            if rng.random() < 0.8:
                body[position] ^= 1 << rng.randrange(8)
            else:
                body[position] = rng.randrange(256)
        _decodes_or_bad_request(bytes(body))


# --- the tables -----------------------------------------------------------------------------


def test_every_kind_has_a_message() -> None:
    for kinds in (*KINDS.values(), ANY_VERSION_KINDS):
        for kind in kinds:
            assert kind in protobuf.COMPILED


def test_tables_have_no_cycles() -> None:
    # Recursion depth while decoding is bounded by the depth of the tables.
    def depth(name: str, seen: tuple[str, ...]) -> int:
        assert name not in seen, " -> ".join((*seen, name))
        nested = [s.type for s in protobuf.COMPILED[name].fields if s.type in protobuf.COMPILED]
        return 1 + max((depth(n, (*seen, name)) for n in nested), default=0)

    assert depth("Pod", ()) < 30


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("replicas *int32,omitempty", ("replicas", protobuf.Shape.POINTER, "int32", True, False)),
        ("containers []Container", ("containers", protobuf.Shape.LIST, "Container", False, False)),
        ("data map[string]bytes,omitempty", ("data", protobuf.Shape.MAP, "bytes", True, False)),
        ("... VolumeSource,inline", ("", protobuf.Shape.VALUE, "VolumeSource", False, True)),
    ],
)
def test_field_spec_syntax(spec: str, expected: tuple[Any, ...]) -> None:
    parsed = protobuf.parse_field_spec(1, spec)
    assert (
        parsed.json_name,
        parsed.shape,
        parsed.type,
        parsed.omitempty,
        parsed.inline,
    ) == expected


@pytest.mark.parametrize(
    "spec", ["name", "name string,sometimes", "... *Volume,inline", "name Volume,inline"]
)
def test_malformed_field_spec(spec: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        protobuf.parse_field_spec(1, spec)
