"""Pod lifecycles on simulated nodes, as data: a table of stages in kwok's shape.

A stage says *which* pods it applies to (a selector of match expressions over JSON paths
of the pod), *when* (a delay with jitter, which a pod annotation may replace) and *what
happens next* (a status template renders the pod's new status, or the pod is deleted).
For each pod bound to a simulated node the first stage whose selector matches is the one
that plays; once its write is seen back through the watch, the pod is matched again. A
pod no stage matches is left alone.

The built-in table (`DEFAULT_STAGES_YAML`), in order:

    pod-delete    a pod terminating gracefully (a deletionTimestamp, a grace period
                  left) is deleted with gracePeriodSeconds=0, as the kubelet does once
                  its containers have stopped; finalizers are left to their owners
    pod-ready     a pod not yet Running (nor finished) becomes Running and Ready
    pod-complete  opt-in: a Running pod with restartPolicy Never/OnFailure and the
                  annotation `simulate.timonel.io/complete-after: <duration>` Succeeds
                  that long after it started running
    pod-fail      opt-in, the same with `simulate.timonel.io/fail-after`: it Fails
    pod-ready-again
                  a Running pod someone else marked not ready (the node lifecycle
                  controller does, while the node is unreachable) is made Ready again,
                  as the kubelet's status sync does once it reaches the server again

`--simulate-config` may replace the table with its own `stages:` list in the same schema.
Everything here is pure: matching, delays and status rendering take the pod and a
`StatusContext` (the time, the node's and the pod's addresses) and return new values.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

import yaml

from timonel.api.objects import Object

COMPLETE_AFTER_ANNOTATION: Final = "simulate.timonel.io/complete-after"
FAIL_AFTER_ANNOTATION: Final = "simulate.timonel.io/fail-after"
CONTAINER_ID_SCHEME: Final = "timonel-sim"

DEFAULT_STAGES_YAML: Final = f"""
- name: pod-delete
  selector:
    matchExpressions:
    - {{key: .metadata.deletionTimestamp, operator: Exists}}
    - {{key: .metadata.deletionGracePeriodSeconds, operator: NotIn, values: ["0"]}}
  delay: {{seconds: 0.1, jitterSeconds: 0.1}}
  next: {{delete: true}}

- name: pod-ready
  selector:
    matchExpressions:
    - {{key: .metadata.deletionTimestamp, operator: DoesNotExist}}
    - {{key: .status.phase, operator: NotIn, values: [Running, Succeeded, Failed]}}
  delay: {{seconds: 0.4, jitterSeconds: 0.2}}
  next: {{statusTemplate: running}}

- name: pod-complete
  selector:
    matchExpressions:
    - {{key: .metadata.deletionTimestamp, operator: DoesNotExist}}
    - {{key: .status.phase, operator: In, values: [Running]}}
    - {{key: .spec.restartPolicy, operator: In, values: [Never, OnFailure]}}
    - {{key: '.metadata.annotations["{COMPLETE_AFTER_ANNOTATION}"]', operator: Exists}}
  delay: {{seconds: 1, fromAnnotation: {COMPLETE_AFTER_ANNOTATION}}}
  next: {{statusTemplate: succeeded}}

- name: pod-fail
  selector:
    matchExpressions:
    - {{key: .metadata.deletionTimestamp, operator: DoesNotExist}}
    - {{key: .status.phase, operator: In, values: [Running]}}
    - {{key: .spec.restartPolicy, operator: In, values: [Never, OnFailure]}}
    - {{key: '.metadata.annotations["{FAIL_AFTER_ANNOTATION}"]', operator: Exists}}
  delay: {{seconds: 1, fromAnnotation: {FAIL_AFTER_ANNOTATION}}}
  next: {{statusTemplate: failed}}

- name: pod-ready-again
  selector:
    matchExpressions:
    - {{key: .metadata.deletionTimestamp, operator: DoesNotExist}}
    - {{key: .status.phase, operator: In, values: [Running]}}
    - {{key: '.status.conditions.[].status', operator: In, values: ["False", Unknown]}}
  delay: {{seconds: 0.4, jitterSeconds: 0.2}}
  next: {{statusTemplate: running}}
"""


class StageError(ValueError):
    """A stage table that cannot be used, with the offending place named."""


# -- durations -------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def parse_duration(value: Any) -> float:
    """Seconds from a number of seconds or a Go duration string ("500ms", "1m30s")."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"invalid duration {value!r}: negative")
        return float(value)
    text = str(value).strip()
    if not text:
        raise ValueError("invalid duration ''")
    if text == "0":
        return 0.0
    position, total = 0, 0.0
    while position < len(text):
        part = _DURATION_PART.match(text, position)
        if part is None:
            raise ValueError(f"invalid duration {value!r}")
        total += float(part.group(1)) * _DURATION_UNITS[part.group(2)]
        position = part.end()
    return total


# -- selectors -------------------------------------------------------------------------------


class Operator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"
    EXISTS = "Exists"
    DOES_NOT_EXIST = "DoesNotExist"


# `[]` in a path stands for "every element of this list".
EVERY_ELEMENT: Final = "[]"
_PATH_TOKEN = re.compile(r'\.\[\]|\.([A-Za-z0-9_$-]+)|\["((?:[^"\\]|\\.)*)"\]')


def parse_path(text: str) -> tuple[str, ...]:
    """A kwok-style path: `.status.phase`, `.metadata.ownerReferences.[].kind`,
    `.metadata.annotations["example.com/key"]`."""
    segments: list[str] = []
    position = 0
    while position < len(text):
        token = _PATH_TOKEN.match(text, position)
        if token is None:
            raise StageError(f"invalid path {text!r} at offset {position}")
        if token.group(0) == ".[]":
            segments.append(EVERY_ELEMENT)
        elif token.group(1) is not None:
            segments.append(token.group(1))
        else:
            segments.append(re.sub(r"\\(.)", r"\1", token.group(2)))
        position = token.end()
    if not segments:
        raise StageError(f"invalid path {text!r}: empty")
    return tuple(segments)


def lookup(obj: Any, path: Sequence[str]) -> list[Any]:
    """Every value at `path` in `obj` (several where the path goes through `[]`);
    missing fields and nulls contribute nothing."""
    found = [obj]
    for segment in path:
        following: list[Any] = []
        for value in found:
            if segment == EVERY_ELEMENT:
                if isinstance(value, list):
                    following.extend(value)
            elif isinstance(value, dict) and value.get(segment) is not None:
                following.append(value[segment])
        found = following
    return found


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True)
class MatchExpression:
    key: str
    operator: Operator
    values: tuple[str, ...] = ()
    path: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", parse_path(self.key))
        if self.operator in (Operator.IN, Operator.NOT_IN) and not self.values:
            raise StageError(f"{self.key}: operator {self.operator} needs values")
        if self.operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST) and self.values:
            raise StageError(f"{self.key}: operator {self.operator} takes no values")

    def matches(self, obj: Object) -> bool:
        # As label selectors: NotIn also matches when the field is absent.
        found = [_as_text(value) for value in lookup(obj, self.path)]
        if self.operator is Operator.EXISTS:
            return bool(found)
        if self.operator is Operator.DOES_NOT_EXIST:
            return not found
        hit = any(value in self.values for value in found)
        return hit if self.operator is Operator.IN else not hit


# -- stages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delay:
    seconds: float = 0.0
    # A uniformly random extra in [0, jitter), so that pods created together spread out.
    jitter: float = 0.0
    # A pod annotation whose value (a duration) replaces `seconds` when it parses.
    from_annotation: str = ""


@dataclass(frozen=True)
class Next:
    status_template: str = ""
    delete: bool = False


@dataclass(frozen=True)
class Stage:
    name: str
    selector: tuple[MatchExpression, ...]
    delay: Delay
    next: Next

    def matches(self, pod: Object) -> bool:
        return all(expression.matches(pod) for expression in self.selector)


def match_stage(stages: Iterable[Stage], pod: Object) -> Stage | None:
    """The first stage of the table whose selector matches `pod`."""
    return next((stage for stage in stages if stage.matches(pod)), None)


def stage_delay(stage: Stage, pod: Object, random_fraction: float) -> float:
    """Seconds to wait before playing `stage` on `pod`; `random_fraction` in [0, 1) picks
    the jitter."""
    seconds = stage.delay.seconds
    if stage.delay.from_annotation:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        value = annotations.get(stage.delay.from_annotation)
        if value is not None:
            with contextlib.suppress(ValueError):
                seconds = parse_duration(value)
    return seconds + stage.delay.jitter * random_fraction


# -- reading a stage table -------------------------------------------------------------------


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise StageError(f"{where}: expected a mapping")
    return value


def parse_stage(data: Any, where: str = "stage") -> Stage:
    spec = _mapping(data, where)
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise StageError(f"{where}.name: required")
    where = f"stage {name}"
    expressions: list[MatchExpression] = []
    raw_expressions = _mapping(spec.get("selector"), f"{where}.selector").get("matchExpressions")
    for i, raw in enumerate(raw_expressions or []):
        item = _mapping(raw, f"{where}.selector.matchExpressions[{i}]")
        try:
            operator = Operator(str(item.get("operator")))
        except ValueError:
            raise StageError(
                f"{where}.selector.matchExpressions[{i}].operator: "
                f"{item.get('operator')!r} is not one of In, NotIn, Exists, DoesNotExist"
            ) from None
        expressions.append(
            MatchExpression(
                str(item.get("key", "")),
                operator,
                tuple(_as_text(v) for v in item.get("values") or ()),
            )
        )
    raw_delay = _mapping(spec.get("delay"), f"{where}.delay")
    try:
        delay = Delay(
            seconds=parse_duration(raw_delay.get("seconds", 0)),
            jitter=parse_duration(raw_delay.get("jitterSeconds", 0)),
            from_annotation=str(raw_delay.get("fromAnnotation") or ""),
        )
    except ValueError as exc:
        raise StageError(f"{where}.delay: {exc}") from None
    raw_next = _mapping(spec.get("next"), f"{where}.next")
    following = Next(
        status_template=str(raw_next.get("statusTemplate") or ""),
        delete=bool(raw_next.get("delete", False)),
    )
    if following.delete == bool(following.status_template):
        raise StageError(f"{where}.next: exactly one of delete: true or statusTemplate")
    if following.status_template and following.status_template not in STATUS_TEMPLATES:
        raise StageError(
            f"{where}.next.statusTemplate: {following.status_template!r} is not one of "
            + ", ".join(sorted(STATUS_TEMPLATES))
        )
    return Stage(name, tuple(expressions), delay, following)


def parse_stages(data: Any) -> tuple[Stage, ...]:
    if not isinstance(data, list) or not data:
        raise StageError("stages: expected a non-empty list")
    stages = tuple(parse_stage(item, f"stages[{i}]") for i, item in enumerate(data))
    names = [stage.name for stage in stages]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise StageError(f"stages: duplicate names {', '.join(duplicates)}")
    return stages


# -- playing a stage -------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusContext:
    """What a status template may use besides the pod itself."""

    now: str
    host_ip: str
    pod_ip: str


@dataclass(frozen=True)
class Action:
    """The outcome of playing a stage: the pod's new status, or its deletion."""

    stage: str
    status: Object | None = None
    delete: bool = False


def play_stage(stage: Stage, pod: Object, context: StatusContext) -> Action:
    if stage.next.delete:
        return Action(stage.name, delete=True)
    render = STATUS_TEMPLATES[stage.next.status_template]
    return Action(stage.name, status=render(pod, context))


# -- status templates ------------------------------------------------------------------------

# The order the kubelet writes pod conditions in.
_CONDITION_ORDER: Final = (
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
)


def _condition(
    old: Mapping[str, Object], kind: str, wanted: tuple[str, str, str], now: str
) -> Object:
    status, reason, message = wanted
    previous = old.get(kind) or {}
    transition = previous.get("lastTransitionTime") if previous.get("status") == status else None
    condition: Object = {
        "type": kind,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": transition or now,
    }
    if reason:
        condition["reason"] = reason
    if message:
        condition["message"] = message
    return condition


def _with_conditions(status: Object, wanted: Mapping[str, tuple[str, str, str]], now: str) -> None:
    """Set the kubelet-owned conditions (`type → (status, reason, message)`) in kubelet's
    order; conditions others own (readiness gates, DisruptionTarget, ...) stay after."""
    old = {c.get("type", ""): c for c in status.get("conditions") or [] if isinstance(c, dict)}
    conditions = [
        _condition(old, kind, wanted[kind], now) for kind in _CONDITION_ORDER if kind in wanted
    ]
    conditions += [c for kind, c in old.items() if kind not in wanted]
    status["conditions"] = conditions


def _spec(pod: Object) -> Object:
    spec = pod.get("spec")
    return spec if isinstance(spec, dict) else {}


def _container_id(pod: Object, container: str) -> str:
    uid = (pod.get("metadata") or {}).get("uid", "")
    digest = hashlib.sha256(f"{uid}/{container}".encode()).hexdigest()
    return f"{CONTAINER_ID_SCHEME}://{digest}"


def _image_id(image: str) -> str:
    """The digest reference a runtime reports: the image's own digest when it names
    one, else a made-up digest of its name."""
    if "@" in image:
        return image
    repository = image
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return f"{repository}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"


def _started_at(old_statuses: Any, name: str, now: str) -> str:
    for status in old_statuses or []:
        if isinstance(status, dict) and status.get("name") == name:
            state = status.get("state") or {}
            for phase in ("running", "terminated"):
                started = (state.get(phase) or {}).get("startedAt")
                if started:
                    return str(started)
    return now


def _running_container(pod: Object, container: Object, now: str, old_statuses: Any) -> Object:
    name = str(container.get("name", ""))
    image = str(container.get("image", ""))
    return {
        "containerID": _container_id(pod, name),
        "image": image,
        "imageID": _image_id(image),
        "lastState": {},
        "name": name,
        "ready": True,
        "restartCount": 0,
        "started": True,
        "state": {"running": {"startedAt": _started_at(old_statuses, name, now)}},
    }


def _terminated_container(
    pod: Object, container: Object, now: str, old_statuses: Any, *, exit_code: int, ready: bool
) -> Object:
    name = str(container.get("name", ""))
    image = str(container.get("image", ""))
    container_id = _container_id(pod, name)
    return {
        "containerID": container_id,
        "image": image,
        "imageID": _image_id(image),
        "lastState": {},
        "name": name,
        "ready": ready,
        "restartCount": 0,
        "started": False,
        "state": {
            "terminated": {
                "containerID": container_id,
                "exitCode": exit_code,
                "finishedAt": now,
                "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": _started_at(old_statuses, name, now),
            }
        },
    }


def _init_statuses(pod: Object, now: str, old_statuses: Any) -> list[Object]:
    """Init containers once the pod runs: sidecars (restartPolicy Always) are running, the
    others have completed."""
    statuses = []
    for container in _spec(pod).get("initContainers") or []:
        if container.get("restartPolicy") == "Always":
            statuses.append(_running_container(pod, container, now, old_statuses))
        else:
            statuses.append(
                _terminated_container(pod, container, now, old_statuses, exit_code=0, ready=True)
            )
    return statuses


def _readiness(status: Object, pod: Object) -> tuple[str, str, str]:
    """The Ready condition of a pod whose containers are all ready: True unless one of its
    readiness gates is not (yet) True, as the kubelet decides."""
    present = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    for gate in _spec(pod).get("readinessGates") or []:
        kind = gate.get("conditionType", "")
        if kind not in present:
            return (
                "False",
                "ReadinessGatesNotReady",
                f'corresponding condition of pod readiness gate "{kind}" does not exist.',
            )
        if present[kind] != "True":
            return (
                "False",
                "ReadinessGatesNotReady",
                f'the status of pod readiness gate "{kind}" is not "True", but {present[kind]}',
            )
    return ("True", "", "")


def _addresses(status: Object, context: StatusContext, now: str) -> None:
    status["hostIP"] = context.host_ip
    status["hostIPs"] = [{"ip": context.host_ip}]
    status["podIP"] = context.pod_ip
    status["podIPs"] = [{"ip": context.pod_ip}]
    status.setdefault("startTime", now)
    if not status["startTime"]:
        status["startTime"] = now


def render_running_status(pod: Object, context: StatusContext) -> Object:
    """A pod whose sandbox has an address and whose containers all run and are ready."""
    now = context.now
    status = copy.deepcopy(pod.get("status") or {})
    old_containers = status.get("containerStatuses")
    status["phase"] = "Running"
    _addresses(status, context, now)
    _with_conditions(
        status,
        {
            "PodReadyToStartContainers": ("True", "", ""),
            "Initialized": ("True", "", ""),
            "Ready": _readiness(status, pod),
            "ContainersReady": ("True", "", ""),
            "PodScheduled": ("True", "", ""),
        },
        now,
    )
    status["containerStatuses"] = [
        _running_container(pod, c, now, old_containers) for c in _spec(pod).get("containers") or []
    ]
    init = _init_statuses(pod, now, status.get("initContainerStatuses"))
    if init:
        status["initContainerStatuses"] = init
    return status


def _render_finished(pod: Object, context: StatusContext, *, succeeded: bool) -> Object:
    now = context.now
    status = copy.deepcopy(pod.get("status") or {})
    reason = "PodCompleted" if succeeded else "PodFailed"
    status["phase"] = "Succeeded" if succeeded else "Failed"
    if not status.get("podIP"):
        _addresses(status, context, now)
    _with_conditions(
        status,
        {
            "PodReadyToStartContainers": ("False", "", ""),
            "Initialized": ("True", "", ""),
            "Ready": ("False", reason, ""),
            "ContainersReady": ("False", reason, ""),
            "PodScheduled": ("True", "", ""),
        },
        now,
    )
    old_containers = status.get("containerStatuses")
    status["containerStatuses"] = [
        _terminated_container(
            pod, c, now, old_containers, exit_code=0 if succeeded else 1, ready=False
        )
        for c in _spec(pod).get("containers") or []
    ]
    return status


def render_succeeded_status(pod: Object, context: StatusContext) -> Object:
    """Every container exited 0; the pod is done."""
    return _render_finished(pod, context, succeeded=True)


def render_failed_status(pod: Object, context: StatusContext) -> Object:
    """Every container exited 1 (reason Error); the pod failed."""
    return _render_finished(pod, context, succeeded=False)


StatusTemplate = Callable[[Object, StatusContext], Object]

STATUS_TEMPLATES: Final[Mapping[str, StatusTemplate]] = {
    "running": render_running_status,
    "succeeded": render_succeeded_status,
    "failed": render_failed_status,
}

DEFAULT_STAGES: Final = parse_stages(yaml.safe_load(DEFAULT_STAGES_YAML))
