"""Pods: the strategy, and the pure pieces of pod handling the API server needs around it.

- `admit_pod(pod)`: what kube-apiserver's default admission plugins do to a new pod
  (ServiceAccount, DefaultTolerationSeconds, Priority).
- `qos_class(pod)`: the QoS class kube-apiserver records in status.qosClass at create.
- `bind_pod(pod, binding)`: the `pods/binding` subresource (what the scheduler posts).
- eviction helpers for `pods/eviction`.
- `pod_status_cell(pod)` and friends: `kubectl get pods` as printers.go prints it.
"""

from __future__ import annotations

import copy
import functools
import re
from datetime import datetime
from typing import Any, ClassVar

from timonel.api import errors
from timonel.api.errors import FieldError, duplicate, forbidden, invalid_value, required
from timonel.api.objects import Object, now_rfc3339, parse_rfc3339
from timonel.api.quantity import (
    Quantity,
    QuantityError,
    canonical_resource_list,
    parse_quantity_value,
)
from timonel.api.validation import dns1123_label_problems, dns1123_subdomain_problems
from timonel.kinds.base import AGE_COLUMN, NAME_COLUMN, Column, Strategy
from timonel.kinds.core.common import (
    MAX_INT32,
    as_dict,
    as_list,
    as_str,
    immutable,
    index,
    is_dual_stack,
    is_int,
    spec_diff,
    validate_ip,
    validate_qualified_name,
)
from timonel.kinds.core.podcontainers import validate_containers_for_pod
from timonel.kinds.core.podscheduling import validate_tolerations
from timonel.kinds.core.podspec import (
    default_pod_only,
    default_pod_spec,
    is_restartable_init_container,
    validate_pod_annotations,
    validate_pod_spec,
)
from timonel.kinds.printing import age, field_description

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
DEFAULT_TOLERATION_SECONDS = 300
SYSTEM_PRIORITY_CLASSES = {
    "system-node-critical": 2000001000,
    "system-cluster-critical": 2000000000,
}
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
SERVICE_ACCOUNT_MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
NODE_UNREACHABLE_REASON = "NodeLost"

UPDATABLE_POD_SPEC_FIELDS = (
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)


def _pod_doc(*path: str) -> str:
    return field_description("", "v1", "Pod", *path)


class PodStrategy(Strategy):
    kind = "Pod"
    plural = "pods"
    singular = "pod"
    short_names = ("po",)
    categories = ("all",)
    has_status = True
    field_labels = (
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    )  # fmt: skip
    columns: ClassVar[tuple[Column, ...]] = (
        NAME_COLUMN,
        Column(
            "Ready", description="The aggregate readiness state of this pod for accepting traffic."
        ),
        Column("Status", description="The aggregate status of the containers in this pod."),
        Column(
            "Restarts",
            description="The number of times the containers in this pod have been restarted "
            "and when the last container in this pod has restarted.",
        ),
        AGE_COLUMN,
        Column("IP", priority=1, description=_pod_doc("status", "podIP")),
        Column("Node", priority=1, description=_pod_doc("spec", "nodeName")),
        Column("Nominated Node", priority=1, description=_pod_doc("status", "nominatedNodeName")),
        Column("Readiness Gates", priority=1, description=_pod_doc("spec", "readinessGates")),
    )

    # -- defaults and preparation ------------------------------------------------------

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = {}
            obj["spec"] = spec
        default_pod_spec(spec)
        default_pod_only(spec)
        status = obj.get("status")
        if isinstance(status, dict):
            _default_pod_status(status)

    def prepare_for_create(self, obj: Object) -> None:
        obj["status"] = {"phase": "Pending"}
        obj["status"]["qosClass"] = qos_class(obj)
        spec = as_dict(obj.get("spec"))
        if as_list(spec.get("schedulingGates")):
            obj["status"]["conditions"] = [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "lastProbeTime": None,
                    "lastTransitionTime": None,
                    "reason": "SchedulingGated",
                    "message": "Scheduling is blocked due to non-empty scheduling gates",
                }
            ]
        _apply_match_label_keys(obj)
        _sync_app_armor(obj)

    def prepare_for_status_update(self, new: Object, old: Object) -> None:
        """The status endpoint owns status and labels/annotations; spec and owner references
        stay as they were, and a lost QoS class is restored."""
        for field in list(new):
            if field not in ("status", "metadata", "apiVersion", "kind"):
                new.pop(field)
        for field, value in old.items():
            if field not in ("status", "metadata", "apiVersion", "kind"):
                new[field] = value
        new_meta = new.setdefault("metadata", {})
        old_meta = old.get("metadata") or {}
        if "ownerReferences" in old_meta:
            new_meta["ownerReferences"] = old_meta["ownerReferences"]
        else:
            new_meta.pop("ownerReferences", None)
        status = new.setdefault("status", {})
        if not status.get("qosClass") and as_dict(old.get("status")).get("qosClass"):
            status["qosClass"] = old["status"]["qosClass"]

    # -- validation --------------------------------------------------------------------

    def validate(self, obj: Object) -> list[FieldError]:
        spec = as_dict(obj.get("spec"))
        errors = self._validate_pod(obj)
        if as_list(spec.get("ephemeralContainers")):
            errors.append(forbidden("spec.ephemeralContainers", "cannot be set on create"))
        if spec.get("nodeName") and as_list(spec.get("schedulingGates")):
            errors.append(
                forbidden(
                    "spec.nodeName", "cannot be set until all schedulingGates have been cleared"
                )
            )
        return errors

    def _validate_pod(self, obj: Object) -> list[FieldError]:
        """validatePodMetadataAndSpec, less the object metadata checked apart."""
        meta = as_dict(obj.get("metadata"))
        spec = as_dict(obj.get("spec"))
        errors = validate_pod_annotations(as_dict(meta.get("annotations")), "metadata.annotations")
        errors += validate_pod_spec(spec, "spec", pod_name=as_str(meta.get("name")), is_pod=True)
        if not spec.get("serviceAccountName"):
            for i, volume in enumerate(as_list(spec.get("volumes"))):
                projected = as_dict(volume).get("projected")
                for j, source in enumerate(as_list(as_dict(projected).get("sources"))):
                    if as_dict(source).get("serviceAccountToken") is not None:
                        errors.append(
                            forbidden(
                                f"spec.volumes[{i}].projected.sources[{j}].serviceAccountToken",
                                "must not be specified when serviceAccountName is not set",
                            )
                        )
        errors += validate_containers_for_pod(spec, "spec")
        return errors

    def validate_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = self._validate_pod(new)
        errors += _validate_annotation_updates(new, old)
        errors += validate_pod_spec_update(as_dict(new.get("spec")), as_dict(old.get("spec")))
        return errors

    def validate_status_update(self, new: Object, old: Object) -> list[FieldError]:
        errors = _validate_annotation_updates(new, old)
        status = as_dict(new.get("status"))
        old_status = as_dict(old.get("status"))
        spec = as_dict(new.get("spec"))
        old_spec = as_dict(old.get("spec"))
        for i, condition in enumerate(as_list(status.get("conditions"))):
            kind = as_str(as_dict(condition).get("type"))
            if kind not in ("PodScheduled", "Ready", "Initialized"):
                errors += _condition_type_errors(kind, f"metadata.conditions[{i}].Type")
        if spec.get("nodeName") != old_spec.get("nodeName"):
            errors.append(forbidden("status.nodeName", "may not be changed directly"))
        nominated = status.get("nominatedNodeName")
        if nominated and nominated != old_status.get("nominatedNodeName"):
            errors += [
                invalid_value("status.nominatedNodeName", nominated, p)
                for p in dns1123_subdomain_problems(as_str(nominated))
            ]
        if status.get("qosClass", "") != old_status.get("qosClass", ""):
            errors.append(immutable("status.qosClass", status.get("qosClass", "")))
        restart = old_spec.get("restartPolicy")
        errors += _validate_state_transitions(
            status.get("containerStatuses"),
            old_status.get("containerStatuses"),
            "status.containerStatuses",
            restart,
            set(),
        )
        sidecars = {
            as_str(as_dict(c).get("name"))
            for c in as_list(old_spec.get("initContainers"))
            if is_restartable_init_container(c)
        }
        errors += _validate_state_transitions(
            status.get("initContainerStatuses"),
            old_status.get("initContainerStatuses"),
            "status.initContainerStatuses",
            restart,
            sidecars,
        )
        errors += _validate_state_transitions(
            status.get("ephemeralContainerStatuses"),
            old_status.get("ephemeralContainerStatuses"),
            "status.ephemeralContainerStatuses",
            "Never",
            set(),
        )
        errors += _validate_ip_list(status, "podIPs", "podIP")
        host_ips = [as_str(as_dict(h).get("ip")) for h in as_list(status.get("hostIPs"))]
        if host_ips and status.get("hostIP", "") != host_ips[0]:
            errors.append(
                invalid_value("status.hostIPs[0].ip", host_ips[0], "must be equal to `hostIP`")
            )
        errors += _validate_ip_list(status, "hostIPs", "hostIP")
        return errors

    def warnings(self, obj: Object) -> list[str]:
        name = as_str(as_dict(obj.get("metadata")).get("name"))
        problems = dns1123_label_problems(name) if name else []
        if problems:
            return [
                "metadata.name: this is used in the Pod's hostname, which can result in surprising "
                f"behavior; a DNS label is recommended: [{' '.join(problems)}]"
            ]
        return []

    # -- reading -----------------------------------------------------------------------

    def table_row(self, obj: Object) -> list[Any]:
        return pod_row(obj)

    def row_conditions(self, obj: Object) -> list[dict[str, str]] | None:
        phase = as_dict(obj.get("status")).get("phase")
        if phase == "Succeeded":
            return [
                {
                    "type": "Completed",
                    "status": "True",
                    "reason": "Succeeded",
                    "message": "The pod has completed successfully.",
                }
            ]
        if phase == "Failed":
            return [
                {
                    "type": "Completed",
                    "status": "True",
                    "reason": "Failed",
                    "message": "The pod failed.",
                }
            ]
        return None

    def selectable_fields(self, obj: Object) -> dict[str, str]:
        fields = super().selectable_fields(obj)
        spec = as_dict(obj.get("spec"))
        status = as_dict(obj.get("status"))
        pod_ips = as_list(status.get("podIPs"))
        fields.update(
            {
                "spec.nodeName": as_str(spec.get("nodeName")),
                "spec.restartPolicy": as_str(spec.get("restartPolicy")),
                "spec.schedulerName": as_str(spec.get("schedulerName")),
                "spec.serviceAccountName": as_str(spec.get("serviceAccountName")),
                "spec.hostNetwork": "true" if spec.get("hostNetwork") is True else "false",
                "status.phase": as_str(status.get("phase")),
                "status.podIP": as_str(as_dict(pod_ips[0]).get("ip")) if pod_ips else "",
                "status.nominatedNodeName": as_str(status.get("nominatedNodeName")),
            }
        )
        return fields


def _default_pod_status(status: dict[str, Any]) -> None:
    """What decoding a v1 PodStatus does: podIP and podIPs (hostIP and hostIPs) agree, the
    singular field winning; ResourceList defaults reach the resources of each container."""
    for single, plural in (("podIP", "podIPs"), ("hostIP", "hostIPs")):
        ip = status.get(single)
        ips = as_list(status.get(plural))
        if ip and (not ips or as_dict(ips[0]).get("ip") != ip):
            status[plural] = [{"ip": ip}]
        elif ips and as_dict(ips[0]).get("ip"):
            status[single] = as_dict(ips[0])["ip"]
    for field in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for container in as_list(status.get(field)):
            container = as_dict(container)
            if isinstance(container.get("allocatedResources"), dict):
                container["allocatedResources"], _ = canonical_resource_list(
                    container["allocatedResources"]
                )
            resources = container.get("resources")
            if isinstance(resources, dict):
                for part in ("limits", "requests"):
                    if isinstance(resources.get(part), dict):
                        resources[part], _ = canonical_resource_list(resources[part])


def _apply_match_label_keys(pod: Object) -> None:
    """mutatePodAffinity: matchLabelKeys / mismatchLabelKeys become label selector
    requirements on the pod's own label values."""
    affinity = as_dict(as_dict(pod.get("spec")).get("affinity"))
    if "podAffinity" not in affinity and "podAntiAffinity" not in affinity:
        return
    labels = as_dict(as_dict(pod.get("metadata")).get("labels"))
    for field in ("podAffinity", "podAntiAffinity"):
        terms = as_dict(affinity.get(field))
        all_terms = [
            as_dict(t) for t in as_list(terms.get("requiredDuringSchedulingIgnoredDuringExecution"))
        ]
        all_terms += [
            as_dict(as_dict(t).get("podAffinityTerm"))
            for t in as_list(terms.get("preferredDuringSchedulingIgnoredDuringExecution"))
        ]
        for term in all_terms:
            selector = term.get("labelSelector")
            if not isinstance(selector, dict):
                continue
            for keys_field, operator in (("matchLabelKeys", "In"), ("mismatchLabelKeys", "NotIn")):
                for key in as_list(term.get(keys_field)):
                    if key in labels:
                        selector.setdefault("matchExpressions", []).append(
                            {"key": key, "operator": operator, "values": [labels[key]]}
                        )


def _sync_app_armor(pod: Object) -> None:
    """applyAppArmorVersionSkew: AppArmor profiles in fields get their deprecated
    annotations and annotations become fields, so old and new kubelets agree."""
    spec = as_dict(pod.get("spec"))
    if as_dict(spec.get("os")).get("name") == "windows":
        return
    meta = pod.setdefault("metadata", {})
    pod_profile = as_dict(as_dict(spec.get("securityContext")).get("appArmorProfile"))
    if not pod_profile and not _app_armor_anywhere(spec, meta):
        return
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in as_list(spec.get(field)):
            container = as_dict(container)
            name = as_str(container.get("name"))
            key = APPARMOR_ANNOTATION_PREFIX + name
            context = as_dict(container.get("securityContext"))
            profile = as_dict(context.get("appArmorProfile")) or pod_profile
            annotations = meta.get("annotations") or {}
            if profile and key not in annotations:
                value = {"RuntimeDefault": "runtime/default", "Unconfined": "unconfined"}.get(
                    as_str(profile.get("type"))
                )
                if profile.get("type") == "Localhost" and profile.get("localhostProfile"):
                    value = "localhost/" + as_str(profile.get("localhostProfile"))
                if value:
                    meta.setdefault("annotations", {})[key] = value
            elif not profile and key in annotations:
                annotation = as_str(annotations[key])
                derived: dict[str, Any] | None = None
                if annotation == "runtime/default":
                    derived = {"type": "RuntimeDefault"}
                elif annotation == "unconfined":
                    derived = {"type": "Unconfined"}
                elif annotation.startswith("localhost/"):
                    derived = {
                        "type": "Localhost",
                        "localhostProfile": annotation.removeprefix("localhost/"),
                    }
                if derived is not None:
                    container.setdefault("securityContext", {})["appArmorProfile"] = derived


def _app_armor_anywhere(spec: dict[str, Any], meta: dict[str, Any]) -> bool:
    """Whether a container names an AppArmor profile or an annotation may name one (when
    neither, _sync_app_armor has nothing to do)."""
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict) or any(
        str(k).startswith(APPARMOR_ANNOTATION_PREFIX) for k in annotations
    ):
        return True
    return any(
        as_dict(as_dict(as_dict(container).get("securityContext")).get("appArmorProfile"))
        for field in ("initContainers", "containers", "ephemeralContainers")
        for container in as_list(spec.get(field))
    )


# ======================================================================================
# admission
# ======================================================================================


def admit_pod(
    pod: Object,
    *,
    priority_class: Object | None = None,
    default_priority_class: Object | None = None,
) -> None:
    """What kube-apiserver's default admission plugins do to a pod being created.

    - ServiceAccount: serviceAccountName (and the deprecated serviceAccount) default to
      "default" (mirror pods excepted). The projected token volume is added separately by
      `mount_service_account_token`, for nodes that serve it.
    - DefaultTolerationSeconds: tolerate not-ready and unreachable nodes for 300s.
    - Priority: spec.priority and spec.preemptionPolicy from the pod's PriorityClass;
      `priority_class` is the PriorityClass named by spec.priorityClassName (the two system
      classes are built in), `default_priority_class` the cluster's globalDefault one.
      Raises 403 Forbidden when the class is unknown or the pod contradicts it.
    """
    meta = as_dict(pod.get("metadata"))
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        spec = {}
        pod["spec"] = spec
    mirror = MIRROR_POD_ANNOTATION in as_dict(meta.get("annotations"))
    if not mirror and not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = "default"
    if spec.get("serviceAccountName"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    _add_default_tolerations(spec)
    _admit_priority(pod, spec, priority_class, default_priority_class)


def _add_default_tolerations(spec: dict[str, Any]) -> None:
    tolerations = spec.get("tolerations")
    if not isinstance(tolerations, list):
        tolerations = []
    tolerates = {NOT_READY_TAINT: False, UNREACHABLE_TAINT: False}
    for toleration in tolerations:
        toleration = as_dict(toleration)
        key = as_str(toleration.get("key"))
        effect = as_str(toleration.get("effect"))
        if effect in ("NoExecute", ""):
            for taint in tolerates:
                if key in (taint, ""):
                    tolerates[taint] = True
    for taint, tolerated in tolerates.items():
        if not tolerated:
            tolerations.append(
                {
                    "key": taint,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
                }
            )
    if tolerations:
        spec["tolerations"] = tolerations


def _admit_priority(
    pod: Object,
    spec: dict[str, Any],
    priority_class: Object | None,
    default_class: Object | None,
) -> None:
    name = as_str(as_dict(pod.get("metadata")).get("name"))
    class_name = as_str(spec.get("priorityClassName"))
    preemption: str | None = "PreemptLowerPriority"
    if not class_name:
        priority = 0
        if default_class is not None:
            spec["priorityClassName"] = as_str(as_dict(default_class.get("metadata")).get("name"))
            priority = int(default_class.get("value") or 0)
            preemption = default_class.get("preemptionPolicy") or "PreemptLowerPriority"
    elif class_name in SYSTEM_PRIORITY_CLASSES and priority_class is None:
        priority = SYSTEM_PRIORITY_CLASSES[class_name]
    elif priority_class is not None:
        priority = int(priority_class.get("value") or 0)
        preemption = priority_class.get("preemptionPolicy") or "PreemptLowerPriority"
    else:
        raise _pod_forbidden(name, f"no PriorityClass with name {class_name} was found")
    given = spec.get("priority")
    if given is not None and given != priority:
        raise _pod_forbidden(
            name,
            f"the integer value of priority ({given}) must not be provided in pod spec; priority "
            f"admission controller computed {priority} from the given PriorityClass name",
        )
    spec["priority"] = priority
    if preemption is not None:
        given_policy = spec.get("preemptionPolicy")
        if given_policy is not None and given_policy != preemption:
            raise _pod_forbidden(
                name,
                f"the string value of PreemptionPolicy ({given_policy}) must not be provided in pod "
                f"spec; priority admission controller computed {preemption} from the given "
                "PriorityClass name",
            )
        spec["preemptionPolicy"] = preemption


def _pod_forbidden(name: str, why: str) -> errors.StatusError:
    return errors.StatusError(
        403,
        "Forbidden",
        f'pods "{name}" is forbidden: {why}',
        details={"name": name, "kind": "pods"},
    )


def mount_service_account_token(pod: Object, volume_suffix: str) -> None:
    """The ServiceAccount plugin's token volume: a projected volume `kube-api-access-<suffix>`
    (bound token, the cluster CA from the kube-root-ca.crt ConfigMap, the namespace) mounted
    read-only in every container, unless the pod opts out or already mounts the path."""
    spec = as_dict(pod.get("spec"))
    if spec.get("automountServiceAccountToken") is False:
        return
    containers = [
        as_dict(c) for field in ("initContainers", "containers") for c in as_list(spec.get(field))
    ]
    for container in containers:
        for mount in as_list(container.get("volumeMounts")):
            if as_dict(mount).get("mountPath") == SERVICE_ACCOUNT_MOUNT_PATH:
                return
    name = f"kube-api-access-{volume_suffix}"
    spec.setdefault("volumes", []).append(
        {
            "name": name,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {
                                        "apiVersion": "v1",
                                        "fieldPath": "metadata.namespace",
                                    },
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for container in containers:
        container.setdefault("volumeMounts", []).append(
            {"name": name, "readOnly": True, "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}
        )


# ======================================================================================
# QoS
# ======================================================================================


def qos_class(pod: Object) -> str:
    """ComputePodQOS: Guaranteed, Burstable or BestEffort, from the cpu and memory requests
    and limits of the regular and init containers."""
    spec = as_dict(pod.get("spec"))
    requests: dict[str, Quantity] = {}
    limits: dict[str, Quantity] = {}
    guaranteed = True
    for field in ("containers", "initContainers"):
        for container in as_list(spec.get(field)):
            resources = as_dict(as_dict(container).get("resources"))
            for name, value in _compute_resources(resources.get("requests")):
                requests[name] = requests[name] + value if name in requests else value
            found = set()
            for name, value in _compute_resources(resources.get("limits")):
                found.add(name)
                limits[name] = limits[name] + value if name in limits else value
            if not {"cpu", "memory"} <= found:
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed:
        for name, request in requests.items():
            if limits.get(name) != request:
                guaranteed = False
                break
    if guaranteed and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


def _compute_resources(resources: Any) -> list[tuple[str, Quantity]]:
    found = []
    for name, raw in as_dict(resources).items():
        if name not in ("cpu", "memory"):
            continue
        try:
            value = parse_quantity_value(raw)
        except QuantityError:
            continue
        if value.sign() > 0:
            found.append((name, value))
    return found


# ======================================================================================
# binding and eviction
# ======================================================================================


def bind_pod(pod: Object, binding: Object, *, now: str | None = None) -> Object:
    """The pods/binding subresource: assign `pod` to the node `binding` names. Returns the
    pod (modified in place) with spec.nodeName, the binding's annotations and a true
    PodScheduled condition. Raises the StatusError kube-apiserver answers with: 400 on a
    name mismatch, 409 when the pod is already bound, gated, or fails the binding's uid or
    resourceVersion precondition, 500 when the binding or the pod cannot be bound."""
    meta = as_dict(pod.get("metadata"))
    name = as_str(meta.get("name"))
    binding_meta = as_dict(binding.get("metadata"))
    if binding_meta.get("name", name) != name:
        raise errors.bad_request("name in URL does not match name in Binding object")
    target = as_dict(binding.get("target"))
    problems: list[FieldError] = []
    if target.get("kind") and target.get("kind") != "Node":
        problems.append(
            errors.not_supported("target.kind", target.get("kind"), ["Node", "<empty>"])
        )
    if not target.get("name"):
        problems.append(required("target.name"))
    if problems:
        text = (
            problems[0].message()
            if len(problems) == 1
            else "[" + ", ".join(p.message() for p in problems) + "]"
        )
        raise errors.internal_error(text)
    if meta.get("deletionTimestamp"):
        raise errors.internal_error(f"pod {name} is being deleted, cannot be assigned to a host")
    if binding_meta.get("uid") and binding_meta["uid"] != meta.get("uid"):
        raise errors.conflict("pods", "", name, "pod UID mismatch")
    if binding_meta.get("resourceVersion") and binding_meta["resourceVersion"] != meta.get(
        "resourceVersion"
    ):
        raise errors.conflict("pods", "", name, "pod resourceVersion mismatch")
    spec = pod.setdefault("spec", {})
    if spec.get("nodeName"):
        raise errors.conflict(
            "pods", "", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"'
        )
    if as_list(spec.get("schedulingGates")):
        raise errors.conflict("pods", "", name, f"pod {name} has non-empty .spec.schedulingGates")
    spec["nodeName"] = target["name"]
    annotations = as_dict(binding_meta.get("annotations"))
    if annotations:
        pod.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
    set_pod_condition(pod, {"type": "PodScheduled", "status": "True"}, now=now)
    return pod


def set_pod_condition(pod: Object, condition: dict[str, Any], *, now: str | None = None) -> bool:
    """podutil.UpdatePodCondition: add or replace the condition of that type; the transition
    time moves only when the status changes. True when something changed."""
    condition = {"lastProbeTime": None, **condition, "lastTransitionTime": now or now_rfc3339()}
    status = pod.setdefault("status", {})
    conditions = status.setdefault("conditions", [])
    for i, old in enumerate(conditions):
        if as_dict(old).get("type") != condition["type"]:
            continue
        if old.get("status") == condition["status"]:
            condition["lastTransitionTime"] = old.get("lastTransitionTime")
        changed = any(
            old.get(f) != condition.get(f)
            for f in ("status", "reason", "message", "lastProbeTime", "lastTransitionTime")
        )
        conditions[i] = condition
        return changed
    conditions.append(condition)
    return True


def can_ignore_disruption_budget(pod: Object) -> bool:
    """An eviction of a pod that is finished, pending or already terminating skips the
    PodDisruptionBudget check (canIgnorePDB)."""
    phase = as_dict(pod.get("status")).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(
        as_dict(pod.get("metadata")).get("deletionTimestamp")
    )


def check_eviction_name(pod_name: str, eviction: Object) -> None:
    if as_dict(eviction.get("metadata")).get("name", pod_name) != pod_name:
        raise errors.bad_request("name in URL does not match name in Eviction object")


def eviction_denied(budget: Object) -> errors.StatusError | None:
    """Why the one PodDisruptionBudget covering a pod refuses its eviction (429), or None
    when one more disruption is allowed."""
    meta = as_dict(budget.get("metadata"))
    status = as_dict(budget.get("status"))
    name = as_str(meta.get("name"))
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        cause = f"The disruption budget {name} is still being processed by the server."
    elif int(status.get("disruptionsAllowed") or 0) <= 0:
        cause = (
            f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} healthy "
            f"pods and has {int(status.get('currentHealthy') or 0)} currently"
        )
    else:
        return None
    return errors.StatusError(
        429,
        "TooManyRequests",
        "Cannot evict pod as it would violate the pod's disruption budget.",
        details={"causes": [{"reason": "DisruptionBudget", "message": cause}]},
    )


def too_many_budgets() -> errors.StatusError:
    """A bare 500 Status (no reason), as the eviction subresource answers it."""
    return errors.StatusError(
        500,
        "",
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
    )


def record_disruption(budget: Object, pod_name: str, *, now: str | None = None) -> None:
    """Take one allowed disruption from the budget for this pod (its status is then
    written back before the pod is deleted)."""
    status = budget.setdefault("status", {})
    status["disruptionsAllowed"] = int(status.get("disruptionsAllowed") or 0) - 1
    status.setdefault("disruptedPods", {})[pod_name] = now or now_rfc3339()


# ======================================================================================
# updates
# ======================================================================================


def validate_pod_spec_update(new: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """ValidatePodUpdate's spec rules: only images, activeDeadlineSeconds (lowered or set),
    added tolerations, removed scheduling gates and a negative grace period raised to 1
    may change."""
    errors: list[FieldError] = []
    for field in ("containers", "initContainers"):
        new_containers = as_list(new.get(field))
        old_containers = as_list(old.get(field))
        if len(new_containers) != len(old_containers):
            errors.append(
                forbidden(f"spec.{field}", "pod updates may not add or remove containers")
            )
            return errors
        for i, container in enumerate(new_containers):
            image = as_str(as_dict(container).get("image"))
            if not image:
                errors.append(required(f"spec.{field}[{i}].image"))
            if image.strip() != image:
                errors.append(
                    invalid_value(
                        f"spec.{field}[{i}].image",
                        image,
                        "must not have leading or trailing whitespace",
                    )
                )
    deadline = new.get("activeDeadlineSeconds")
    old_deadline = old.get("activeDeadlineSeconds")
    if deadline is not None:
        if not is_int(deadline) or not 0 <= deadline <= MAX_INT32:
            errors.append(
                invalid_value(
                    "spec.activeDeadlineSeconds",
                    deadline,
                    f"must be between 0 and {MAX_INT32}, inclusive",
                )
            )
            return errors
        if is_int(old_deadline) and old_deadline < deadline:
            errors.append(
                invalid_value(
                    "spec.activeDeadlineSeconds",
                    deadline,
                    "must be less than or equal to previous value",
                )
            )
            return errors
    elif old_deadline is not None:
        errors.append(
            invalid_value(
                "spec.activeDeadlineSeconds",
                None,
                "must not update from a positive integer to nil value",
            )
        )
    errors += _validate_added_tolerations(
        as_list(new.get("tolerations")), as_list(old.get("tolerations"))
    )
    new_gates = as_list(new.get("schedulingGates"))
    old_gate_names = {as_dict(g).get("name") for g in as_list(old.get("schedulingGates"))}
    for i, gate in enumerate(new_gates):
        gate_name = as_dict(gate).get("name")
        if gate_name not in old_gate_names:
            errors.append(
                forbidden(
                    f"spec.schedulingGates[{i}].name",
                    f"only deletion is allowed, but found new scheduling gate '{gate_name}'",
                )
            )
    if new == old:
        return errors
    munged = copy.deepcopy(new)
    for field in ("containers", "initContainers"):
        for container, old_container in zip(
            as_list(munged.get(field)), as_list(old.get(field)), strict=False
        ):
            if isinstance(container, dict):
                _set_or_drop(container, "image", as_dict(old_container).get("image"))
    for field in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        _set_or_drop(munged, field, old.get(field))
    old_grace = old.get("terminationGracePeriodSeconds")
    if is_int(old_grace) and old_grace < 0 and munged.get("terminationGracePeriodSeconds") == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    if old_gate_names:
        errors += _munge_gated_node_affinity(munged, old)
    if munged != old:
        errors.append(
            forbidden(
                "spec",
                "pod updates may not change fields other than "
                + ",".join(UPDATABLE_POD_SPEC_FIELDS)
                + "\n"
                + spec_diff(old, munged, "spec"),
            )
        )
    return errors


def _set_or_drop(holder: dict[str, Any], field: str, value: Any) -> None:
    if value is None:
        holder.pop(field, None)
    else:
        holder[field] = copy.deepcopy(value)


def _munge_gated_node_affinity(munged: dict[str, Any], old: dict[str, Any]) -> list[FieldError]:
    """Gated pods may gain node selector entries and node affinity requirements."""
    errors: list[FieldError] = []
    new_selector = as_dict(munged.get("nodeSelector"))
    old_selector = as_dict(old.get("nodeSelector"))
    if new_selector != old_selector:
        if any(new_selector.get(k) != v for k, v in old_selector.items()):
            errors.append(
                invalid_value(
                    "spec.nodeSelector",
                    new_selector,
                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                )
            )
        _set_or_drop(munged, "nodeSelector", old.get("nodeSelector"))
    new_affinity = as_dict(as_dict(munged.get("affinity")).get("nodeAffinity"))
    old_affinity = as_dict(as_dict(old.get("affinity")).get("nodeAffinity"))
    if new_affinity != old_affinity:
        old_terms = as_list(
            as_dict(old_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")).get(
                "nodeSelectorTerms"
            )
        )
        new_terms = as_list(
            as_dict(new_affinity.get("requiredDuringSchedulingIgnoredDuringExecution")).get(
                "nodeSelectorTerms"
            )
        )
        path = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms"
        if old_terms and len(old_terms) != len(new_terms):
            errors.append(
                invalid_value(
                    path,
                    new_terms,
                    "no additions/deletions to non-empty NodeSelectorTerms list are allowed",
                )
            )
        else:
            for i, (new_term, old_term) in enumerate(zip(new_terms, old_terms, strict=False)):
                if not _only_additions(as_dict(new_term), as_dict(old_term)):
                    errors.append(
                        invalid_value(
                            f"{path}[{i}]",
                            new_term,
                            "only additions are allowed (no mutations or deletions)",
                        )
                    )
        affinity = munged.get("affinity")
        if isinstance(affinity, dict):
            if old_affinity:
                affinity["nodeAffinity"] = copy.deepcopy(old_affinity)
            else:
                affinity.pop("nodeAffinity", None)
                if not affinity and old.get("affinity") is None:
                    munged.pop("affinity")
        elif old_affinity:
            munged["affinity"] = {"nodeAffinity": copy.deepcopy(old_affinity)}
    return errors


def _only_additions(new_term: dict[str, Any], old_term: dict[str, Any]) -> bool:
    for field in ("matchExpressions", "matchFields"):
        old_items = as_list(old_term.get(field))
        if old_items and as_list(new_term.get(field))[: len(old_items)] != old_items:
            return False
    if not old_term.get("matchExpressions") and not old_term.get("matchFields"):
        return not new_term.get("matchExpressions") and not new_term.get("matchFields")
    return True


def _validate_added_tolerations(new: list[Any], old: list[Any]) -> list[FieldError]:
    for old_toleration in old:
        old_without_seconds = {
            k: v for k, v in as_dict(old_toleration).items() if k != "tolerationSeconds"
        }
        if not any(
            {k: v for k, v in as_dict(t).items() if k != "tolerationSeconds"} == old_without_seconds
            for t in new
        ):
            return [
                forbidden(
                    "spec.tolerations",
                    "existing toleration can not be modified except its tolerationSeconds",
                )
            ]
    return validate_tolerations(new, "spec.tolerations")


def _validate_annotation_updates(new: Object, old: Object) -> list[FieldError]:
    new_annotations = as_dict(as_dict(new.get("metadata")).get("annotations"))
    old_annotations = as_dict(as_dict(old.get("metadata")).get("annotations"))
    errors: list[FieldError] = []
    for key, value in old_annotations.items():
        if new_annotations.get(key) == value and key in new_annotations:
            continue
        if key.startswith(APPARMOR_ANNOTATION_PREFIX):
            errors.append(
                forbidden(
                    f"metadata.annotations[{key}]", "may not remove or update AppArmor annotations"
                )
            )
        if key == MIRROR_POD_ANNOTATION:
            errors.append(
                forbidden(
                    f"metadata.annotations[{key}]", "may not remove or update mirror pod annotation"
                )
            )
    for key in new_annotations:
        if key in old_annotations:
            continue
        if key.startswith(APPARMOR_ANNOTATION_PREFIX):
            errors.append(
                forbidden(f"metadata.annotations[{key}]", "may not add AppArmor annotations")
            )
        if key == MIRROR_POD_ANNOTATION:
            errors.append(
                forbidden(f"metadata.annotations[{key}]", "may not add mirror pod annotation")
            )
    return errors


def _validate_state_transitions(
    new: Any,
    old: Any,
    path: str,
    restart_policy: Any,
    restartable: set[str],
) -> list[FieldError]:
    """Containers of pods that do not restart them stay terminated once terminated."""
    if restart_policy == "Always":
        return []
    errors: list[FieldError] = []
    new_states = {
        as_str(as_dict(s).get("name")): as_dict(as_dict(s).get("state")) for s in as_list(new)
    }
    for i, status in enumerate(as_list(old)):
        status = as_dict(status)
        terminated = as_dict(status.get("state")).get("terminated")
        if terminated is None:
            continue
        if as_dict(terminated).get("exitCode", 0) != 0 and restart_policy == "OnFailure":
            continue
        name = as_str(status.get("name"))
        if name in restartable:
            continue
        state = new_states.get(name)
        if state is not None and state.get("terminated") is None:
            errors.append(
                forbidden(f"{path}[{i}].state", "may not be transitioned to non-terminated state")
            )
    return errors


# Kubelet's few condition types come with every status write; validity depends on the
# type alone (the path only words the error).
@functools.lru_cache(maxsize=256)
def _valid_condition_type(kind: str) -> bool:
    return not validate_qualified_name(kind, "")


def _condition_type_errors(kind: str, path: str) -> list[FieldError]:
    return [] if _valid_condition_type(kind) else validate_qualified_name(kind, path)


# A dotted-quad IPv4 address, octets 0-255 with up to three digits (leading zeros too).
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|[01][0-9][0-9]|[0-9]?[0-9])"
_PLAIN_IPV4 = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")


def _ip_errors(ip: str, path: str) -> list[FieldError]:
    """validate_ip, answering the common dotted-quad IPv4 without the ipaddress module
    (which accepts every such address, leading zeros included)."""
    if _PLAIN_IPV4.fullmatch(ip) is not None:
        return []
    return validate_ip(ip, path)


def _validate_ip_list(status: dict[str, Any], field: str, single: str) -> list[FieldError]:
    path = f"status.{field}"
    ips = [as_str(as_dict(entry).get("ip")) for entry in as_list(status.get(field))]
    errors: list[FieldError] = []
    for i, ip in enumerate(ips):
        errors += _ip_errors(ip, index(path, i))
    if len(ips) > 1:
        if not is_dual_stack(ips) or len(ips) > 2:
            errors.append(
                invalid_value(
                    path,
                    as_list(status.get(field)),
                    "may specify no more than one IP for each IP family",
                )
            )
        seen: set[str] = set()
        for i, ip in enumerate(ips):
            if ip in seen:
                errors.append(duplicate(index(path, i), as_list(status.get(field))[i]))
            seen.add(ip)
    return errors


# ======================================================================================
# table
# ======================================================================================


def pod_row(pod: Object, now: datetime | None = None) -> list[Any]:
    """printPod: Name, Ready, Status, Restarts, Age, IP, Node, Nominated Node, Readiness Gates."""
    meta = as_dict(pod.get("metadata"))
    spec = as_dict(pod.get("spec"))
    status = as_dict(pod.get("status"))
    ready, total, reason, restarts, last_restart = _pod_state(pod)
    restarts_cell = str(restarts)
    if restarts and last_restart is not None:
        restarts_cell = f"{restarts} ({age(last_restart, now)} ago)"
    pod_ips = as_list(status.get("podIPs"))
    pod_ip = as_str(as_dict(pod_ips[0]).get("ip")) if pod_ips else ""
    gates = as_list(spec.get("readinessGates"))
    gates_cell = "<none>"
    if gates:
        conditions = as_list(status.get("conditions"))
        true_count = 0
        for gate in gates:
            for condition in conditions:
                if as_dict(condition).get("type") == as_dict(gate).get("conditionType"):
                    if as_dict(condition).get("status") == "True":
                        true_count += 1
                    break
        gates_cell = f"{true_count}/{len(gates)}"
    return [
        meta.get("name", ""),
        f"{ready}/{total}",
        reason,
        restarts_cell,
        age(meta.get("creationTimestamp"), now),
        pod_ip or "<none>",
        as_str(spec.get("nodeName")) or "<none>",
        as_str(status.get("nominatedNodeName")) or "<none>",
        gates_cell,
    ]


def pod_status_cell(pod: Object) -> str:
    """The STATUS column of `kubectl get pods`."""
    return _pod_state(pod)[2]


def _later(current: str | None, candidate: Any) -> str | None:
    if not isinstance(candidate, str) or not candidate:
        return current
    if current is None:
        return candidate
    try:
        return candidate if parse_rfc3339(candidate) > parse_rfc3339(current) else current
    except ValueError:
        return current


def _pod_state(pod: Object) -> tuple[int, int, str, int, str | None]:
    """(ready containers, total containers, status reason, restarts, last restart time)."""
    meta = as_dict(pod.get("metadata"))
    spec = as_dict(pod.get("spec"))
    status = as_dict(pod.get("status"))
    init_containers = {
        as_str(as_dict(c).get("name")): as_dict(c) for c in as_list(spec.get("initContainers"))
    }
    total = len(as_list(spec.get("containers")))
    total += sum(1 for c in init_containers.values() if is_restartable_init_container(c))
    ready = 0
    restarts = 0
    sidecar_restarts = 0
    last_restart: str | None = None
    last_sidecar_restart: str | None = None
    phase = as_str(status.get("phase"))
    reason = as_str(status.get("reason")) or phase
    for condition in as_list(status.get("conditions")):
        condition = as_dict(condition)
        if condition.get("type") == "PodScheduled" and condition.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    initializing = False
    init_statuses = as_list(status.get("initContainerStatuses"))
    for i, container_status in enumerate(init_statuses):
        container_status = as_dict(container_status)
        count = int(container_status.get("restartCount") or 0)
        restarts += count
        finished = as_dict(as_dict(container_status.get("lastState")).get("terminated")).get(
            "finishedAt"
        )
        last_restart = _later(last_restart, finished)
        sidecar = is_restartable_init_container(
            init_containers.get(as_str(container_status.get("name")))
        )
        if sidecar:
            sidecar_restarts += count
            last_sidecar_restart = _later(last_sidecar_restart, finished)
        state = as_dict(container_status.get("state"))
        terminated = state.get("terminated")
        waiting = state.get("waiting")
        if terminated is not None and int(as_dict(terminated).get("exitCode") or 0) == 0:
            continue
        if sidecar and container_status.get("started") is True:
            if container_status.get("ready") is True:
                ready += 1
            continue
        if terminated is not None:
            terminated = as_dict(terminated)
            if not terminated.get("reason"):
                if terminated.get("signal"):
                    reason = f"Init:Signal:{terminated['signal']}"
                else:
                    reason = f"Init:ExitCode:{int(terminated.get('exitCode') or 0)}"
            else:
                reason = "Init:" + as_str(terminated.get("reason"))
        elif (
            waiting is not None
            and as_dict(waiting).get("reason")
            and as_dict(waiting).get("reason") != "PodInitializing"
        ):
            reason = "Init:" + as_str(as_dict(waiting).get("reason"))
        else:
            reason = f"Init:{i}/{len(init_containers)}"
        initializing = True
        break

    initialized = any(
        as_dict(c).get("type") == "Initialized" and as_dict(c).get("status") == "True"
        for c in as_list(status.get("conditions"))
    )
    if not initializing or initialized:
        restarts = sidecar_restarts
        last_restart = last_sidecar_restart
        has_running = False
        for container_status in reversed(as_list(status.get("containerStatuses"))):
            container_status = as_dict(container_status)
            restarts += int(container_status.get("restartCount") or 0)
            finished = as_dict(as_dict(container_status.get("lastState")).get("terminated")).get(
                "finishedAt"
            )
            last_restart = _later(last_restart, finished)
            state = as_dict(container_status.get("state"))
            waiting = state.get("waiting")
            terminated = state.get("terminated")
            if waiting is not None and as_dict(waiting).get("reason"):
                reason = as_str(as_dict(waiting).get("reason"))
            elif terminated is not None and as_dict(terminated).get("reason"):
                reason = as_str(as_dict(terminated).get("reason"))
            elif terminated is not None:
                terminated = as_dict(terminated)
                if terminated.get("signal"):
                    reason = f"Signal:{terminated['signal']}"
                else:
                    reason = f"ExitCode:{int(terminated.get('exitCode') or 0)}"
            elif container_status.get("ready") is True and state.get("running") is not None:
                has_running = True
                ready += 1
        if reason == "Completed" and has_running:
            pod_ready = any(
                as_dict(c).get("type") == "Ready" and as_dict(c).get("status") == "True"
                for c in as_list(status.get("conditions"))
            )
            reason = "Running" if pod_ready else "NotReady"

    if meta.get("deletionTimestamp") and status.get("reason") == NODE_UNREACHABLE_REASON:
        reason = "Unknown"
    elif meta.get("deletionTimestamp") and phase not in ("Succeeded", "Failed"):
        reason = "Terminating"
    return ready, total, reason, restarts, last_restart
