"""The Deployment controller's decisions, as pure functions (kube's deployment/util and
the planning half of sync.go, rolling.go, recreate.go and progress.go).

A Deployment owns ReplicaSets: the *new* one, whose pod template equals the
Deployment's (ignoring the pod-template-hash label), and *old* ones. A rollout moves
replicas from old to new within two fenceposts: at most `replicas + maxSurge` pods in
all, at least `replicas - maxUnavailable` available. Functions here decide sizes,
annotations, status and conditions; deployment.py only reads and writes.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from timonel.api.objects import Object
from timonel.controllers.pods import meta, timestamp
from timonel.controllers.replicas import spec_replicas, status_count

POD_TEMPLATE_HASH = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
ROLLBACK_TO = "deprecated.deployment.rollback.to"
# Annotations a Deployment does not pass on to its ReplicaSets.
SKIPPED_ANNOTATIONS = frozenset(
    {LAST_APPLIED, REVISION, REVISION_HISTORY, DESIRED_REPLICAS, MAX_REPLICAS, ROLLBACK_TO}
)
# The revision-history annotation stays under this many characters.
MAX_REVISION_HISTORY_CHARS = 2000
MAX_INT32 = 2**31 - 1

AVAILABLE = "Available"
PROGRESSING = "Progressing"
REPLICA_FAILURE = "ReplicaFailure"
# Condition reasons, as kube words them.
MINIMUM_REPLICAS_AVAILABLE = "MinimumReplicasAvailable"
MINIMUM_REPLICAS_UNAVAILABLE = "MinimumReplicasUnavailable"
REPLICA_SET_UPDATED = "ReplicaSetUpdated"
FAILED_RS_CREATE = "ReplicaSetCreateError"
NEW_REPLICA_SET_CREATED = "NewReplicaSetCreated"
FOUND_NEW_REPLICA_SET = "FoundNewReplicaSet"
NEW_RS_AVAILABLE = "NewReplicaSetAvailable"
TIMED_OUT = "ProgressDeadlineExceeded"
PAUSED = "DeploymentPaused"
RESUMED = "DeploymentResumed"

_NEVER = datetime.min.replace(tzinfo=UTC)
_PERCENT = re.compile(r"^[0-9]+%$")
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_FNV32_OFFSET = 0x811C9DC5
_FNV32_PRIME = 0x01000193


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the pod-template-hash -------------------------------------------------------------


def fnv32a(data: bytes) -> int:
    value = _FNV32_OFFSET
    for byte in data:
        value = ((value ^ byte) * _FNV32_PRIME) & 0xFFFFFFFF
    return value


def safe_encode(text: str) -> str:
    """rand.SafeEncodeString: each character mapped into an alphabet without vowels (no
    words) and without look-alikes (0/o, 1/l, 3/e)."""
    return "".join(_SAFE_ALPHABET[ord(ch) % len(_SAFE_ALPHABET)] for ch in text)


def pod_template_hash(template: Any, collision_count: int | None) -> str:
    """controller.ComputeHash: FNV-32a over the template's canonical encoding (sorted
    keys), then the collision count as 8 little-endian bytes, rendered as the decimal
    number's digits in the safe alphabet."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count is not None:
        data += (collision_count & 0xFFFFFFFF).to_bytes(8, "little")
    return safe_encode(str(fnv32a(data)))


def _without_empties(value: Any) -> Any:
    """The value with nulls and empty lists/maps dropped, so that equality is semantic
    the way apimachinery's is (nil and empty compare equal)."""
    if isinstance(value, dict):
        cleaned = {k: _without_empties(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [_without_empties(v) for v in value]
    return value


def _without_hash(template: Any) -> Any:
    template = copy.deepcopy(template) if isinstance(template, dict) else {}
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH, None)
    return _without_empties(template)


def equal_ignore_hash(a: Any, b: Any) -> bool:
    """EqualIgnoreHash: the same pod template once the pod-template-hash label is set aside."""
    return bool(_without_hash(a) == _without_hash(b))


# -- fenceposts ------------------------------------------------------------------------


def scaled_value(value: Any, total: int, *, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: an integer as is, a percentage of `total`
    rounded up or down."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _PERCENT.match(value):
        scaled = int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError(f"invalid value for IntOrString: invalid value {value!r}")


def resolve_fenceposts(max_surge: Any, max_unavailable: Any, desired: int) -> tuple[int, int]:
    """(surge, unavailable) for `desired` replicas: surge rounds up, unavailable rounds
    down, and when both come out 0 unavailable becomes 1 (surge might be blocked by a
    quota, so the rollout must be able to move anyway)."""
    surge = scaled_value(0 if max_surge is None else max_surge, desired, round_up=True)
    unavailable = scaled_value(
        0 if max_unavailable is None else max_unavailable, desired, round_up=False
    )
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def is_rolling_update(deployment: Object) -> bool:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    return bool(strategy.get("type", "RollingUpdate") == "RollingUpdate")


def _rolling(deployment: Object) -> dict[str, Any]:
    return ((deployment.get("spec") or {}).get("strategy") or {}).get("rollingUpdate") or {}


def max_surge(deployment: Object) -> int:
    if not is_rolling_update(deployment):
        return 0
    rolling = _rolling(deployment)
    return resolve_fenceposts(
        rolling.get("maxSurge"), rolling.get("maxUnavailable"), spec_replicas(deployment)
    )[0]


def max_unavailable(deployment: Object) -> int:
    """At most the desired count; 0 when not rolling or scaled to zero."""
    replicas = spec_replicas(deployment)
    if not is_rolling_update(deployment) or replicas == 0:
        return 0
    rolling = _rolling(deployment)
    unavailable = resolve_fenceposts(
        rolling.get("maxSurge"), rolling.get("maxUnavailable"), replicas
    )[1]
    return min(unavailable, replicas)


# -- replica sets: which is new, which are old ------------------------------------------


def _created(obj: Object) -> datetime:
    return timestamp(meta(obj).get("creationTimestamp")) or _NEVER


def by_creation(replica_sets: Iterable[Object]) -> list[Object]:
    """ReplicaSetsByCreationTimestamp: oldest first, then by name."""
    return sorted(replica_sets, key=lambda rs: (_created(rs), meta(rs).get("name", "")))


def revision(obj: Object) -> int:
    """The revision annotation as a number (0 when absent or unreadable)."""
    value = (meta(obj).get("annotations") or {}).get(REVISION, "")
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def max_revision(replica_sets: Iterable[Object]) -> int:
    return max((revision(rs) for rs in replica_sets), default=0)


def find_new_replica_set(deployment: Object, replica_sets: list[Object]) -> Object | None:
    """The oldest ReplicaSet whose template is the Deployment's."""
    template = (deployment.get("spec") or {}).get("template")
    for rs in by_creation(replica_sets):
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def find_old_replica_sets(deployment: Object, replica_sets: list[Object]) -> list[Object]:
    new = find_new_replica_set(deployment, replica_sets)
    new_uid = meta(new).get("uid") if new is not None else None
    return [rs for rs in replica_sets if new is None or meta(rs).get("uid") != new_uid]


def active(replica_sets: Iterable[Object | None]) -> list[Object]:
    """FilterActiveReplicaSets: those asked to run at least one pod."""
    return [rs for rs in replica_sets if rs is not None and spec_replicas(rs) > 0]


def total_replicas(replica_sets: Iterable[Object | None]) -> int:
    return sum(spec_replicas(rs) for rs in replica_sets if rs is not None)


def total_status(replica_sets: Iterable[Object | None], field: str) -> int:
    return sum(status_count(rs, field) for rs in replica_sets if rs is not None)


def pods_held(rs: Object) -> int:
    """The pods a ReplicaSet may still have: its size, or more while a scale-down is not
    yet done (kube counts the size only; counting the pods too keeps maxSurge true of
    pods, not only of sizes, while the ReplicaSet controller catches up)."""
    return max(spec_replicas(rs), status_count(rs, "replicas"))


def available_held(rs: Object) -> int:
    """The available pods a ReplicaSet will keep: never more than its size (a status
    written before a scale-down still counts the pods being deleted; kube trusts it)."""
    return min(spec_replicas(rs), status_count(rs, "availableReplicas"))


def _annotation_int(obj: Object, key: str) -> int | None:
    value = (meta(obj).get("annotations") or {}).get(key)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def is_saturated(deployment: Object, rs: Object | None) -> bool:
    """The new ReplicaSet runs, and is available at, the full desired count."""
    if rs is None:
        return False
    desired = _annotation_int(rs, DESIRED_REPLICAS)
    if desired is None:
        return False
    replicas = spec_replicas(deployment)
    return (
        spec_replicas(rs) == replicas
        and desired == replicas
        and status_count(rs, "availableReplicas") == replicas
    )


def is_scaling_event(deployment: Object, new_rs: Object | None, old_rss: list[Object]) -> bool:
    """The desired count changed since the active ReplicaSets were last sized."""
    replicas = spec_replicas(deployment)
    for rs in active([*old_rss, new_rs]):
        desired = _annotation_int(rs, DESIRED_REPLICAS)
        if desired is not None and desired != replicas:
            return True
    return False


# -- scaling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleStep:
    """Set one ReplicaSet to `replicas` (and refresh its replica annotations);
    `operation` ("up"/"down") words the ScalingReplicaSet event."""

    replica_set: Object
    replicas: int
    operation: str


def _step(rs: Object, replicas: int) -> list[ScaleStep]:
    """scaleReplicaSetAndRecordEvent: nothing when the size is already right."""
    current = spec_replicas(rs)
    if current == replicas:
        return []
    return [ScaleStep(rs, replicas, "up" if current < replicas else "down")]


def find_active_or_latest(new_rs: Object | None, old_rss: list[Object]) -> Object | None:
    """The only active ReplicaSet; with none active, the newest; with several, None."""
    if new_rs is None and not old_rss:
        return None
    newest_first = list(reversed(by_creation(old_rss)))
    running = active([*newest_first, new_rs])
    if not running:
        return new_rs if new_rs is not None else newest_first[0]
    return running[0] if len(running) == 1 else None


def _round_half_away(value: float) -> int:
    return int(value + 0.5) if value >= 0 else int(value - 0.5)


def replica_set_fraction(rs: Object, deployment: Object) -> int:
    """How many replicas `rs` gains (or loses) when the Deployment's allowed size moves
    from what the RS was last sized for (its max-replicas annotation) to today's."""
    replicas = spec_replicas(deployment)
    if replicas == 0:
        return -spec_replicas(rs)
    allowed = replicas + max_surge(deployment)
    annotated = _annotation_int(rs, MAX_REPLICAS)
    if annotated is None:
        annotated = status_count(deployment, "replicas")
    if annotated <= 0:
        return 0
    return _round_half_away(spec_replicas(rs) * allowed / annotated) - spec_replicas(rs)


def proportion(rs: Object, deployment: Object, to_add: int, added: int) -> int:
    """GetProportion: this RS's share of `to_add`, never past what is left of it."""
    if spec_replicas(rs) == 0 or to_add == 0 or to_add == added:
        return 0
    fraction = replica_set_fraction(rs, deployment)
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def plan_scale(deployment: Object, new_rs: Object | None, old_rss: list[Object]) -> list[ScaleStep]:
    """The Deployment's replicas changed (or it is paused): resize the ReplicaSets,
    proportionally to their sizes when a rollout is in flight, so a scale-up neither
    speeds up nor slows down the rollout."""
    replicas = spec_replicas(deployment)
    latest = find_active_or_latest(new_rs, old_rss)
    if latest is not None:
        return _step(latest, replicas)
    if is_saturated(deployment, new_rs):
        return [step for old in active(old_rss) for step in _step(old, 0)]
    if not is_rolling_update(deployment):
        return []
    running = active([*old_rss, new_rs])
    allowed = replicas + max_surge(deployment) if replicas > 0 else 0
    to_add = allowed - total_replicas(running)
    operation = ""
    if to_add > 0:
        # Larger first; among equals, newer first.
        running.sort(key=lambda rs: (-spec_replicas(rs), -_created(rs).timestamp()))
        operation = "up"
    elif to_add < 0:
        # Larger first; among equals, older first.
        running.sort(key=lambda rs: (-spec_replicas(rs), _created(rs), meta(rs).get("name", "")))
        operation = "down"
    sizes: list[int] = []
    added = 0
    for rs in running:
        share = proportion(rs, deployment, to_add, added) if to_add else 0
        sizes.append(spec_replicas(rs) + share)
        added += share
    if running and to_add:
        # What rounding left over goes to the largest.
        sizes[0] = max(sizes[0] + to_add - added, 0)
    return [ScaleStep(rs, size, operation) for rs, size in zip(running, sizes, strict=True)]


def new_replica_set_replicas(
    deployment: Object, all_rss: list[Object | None], new_rs: Object
) -> int:
    """NewRSNewReplicas: how big the new ReplicaSet may be now."""
    replicas = spec_replicas(deployment)
    if not is_rolling_update(deployment):
        return replicas
    surge = scaled_value(_rolling(deployment).get("maxSurge", 0), replicas, round_up=True)
    current = sum(pods_held(rs) for rs in all_rss if rs is not None)
    ceiling = replicas + surge
    if current >= ceiling:
        return spec_replicas(new_rs)
    scale_up = min(ceiling - current, replicas - spec_replicas(new_rs))
    return spec_replicas(new_rs) + scale_up


def plan_new_replica_set(
    deployment: Object, all_rss: list[Object | None], new_rs: Object
) -> list[ScaleStep]:
    """reconcileNewReplicaSet: grow the new ReplicaSet as far as maxSurge allows."""
    replicas = spec_replicas(deployment)
    current = spec_replicas(new_rs)
    if current == replicas:
        return []
    if current > replicas:
        return _step(new_rs, replicas)
    return _step(new_rs, new_replica_set_replicas(deployment, all_rss, new_rs))


def plan_old_replica_sets(
    deployment: Object, all_rss: list[Object | None], old_rss: list[Object], new_rs: Object
) -> list[ScaleStep]:
    """reconcileOldReplicaSets: shrink the old (active) ReplicaSets as far as
    maxUnavailable allows: first their unavailable replicas (removing those costs no
    availability), then available ones while the Deployment keeps its minimum."""
    old_count = total_replicas(old_rss)
    if old_count == 0:
        return []
    all_count = total_replicas(all_rss)
    unavailable_allowed = max_unavailable(deployment)
    min_available = spec_replicas(deployment) - unavailable_allowed
    new_unavailable = spec_replicas(new_rs) - status_count(new_rs, "availableReplicas")
    max_scaled_down = all_count - min_available - new_unavailable
    if max_scaled_down <= 0:
        return []
    steps: list[ScaleStep] = []
    sizes = {id(rs): spec_replicas(rs) for rs in old_rss}
    oldest_first = by_creation(old_rss)

    cleaned = 0
    for rs in oldest_first:
        if cleaned >= max_scaled_down:
            break
        size = sizes[id(rs)]
        unhealthy = size - status_count(rs, "availableReplicas")
        if size == 0 or unhealthy <= 0:
            continue
        count = min(max_scaled_down - cleaned, unhealthy)
        sizes[id(rs)] = size - count
        steps.append(ScaleStep(rs, size - count, "down"))
        cleaned += count

    available = sum(available_held(rs) for rs in [*old_rss, new_rs])
    if available <= min_available:
        return steps
    scaled = 0
    budget = available - min_available
    for rs in oldest_first:
        if scaled >= budget:
            break
        size = sizes[id(rs)]
        if size == 0:
            continue
        count = min(size, budget - scaled)
        sizes[id(rs)] = size - count
        steps.append(ScaleStep(rs, size - count, "down"))
        scaled += count
    return steps


def plan_recreate_scale_down(old_rss: list[Object]) -> list[ScaleStep]:
    return [step for rs in active(old_rss) for step in _step(rs, 0)]


def old_pods_running(
    new_rs: Object | None, old_rss: list[Object], pods_by_rs: dict[str, list[Object]]
) -> bool:
    """Recreate waits until no pod of an old ReplicaSet is left running."""
    if total_status(old_rss, "replicas") > 0:
        return True
    new_uid = meta(new_rs).get("uid") if new_rs is not None else None
    for uid, pods in pods_by_rs.items():
        if uid == new_uid:
            continue
        for pod in pods:
            if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                return True
    return False


def has_revision_history_limit(deployment: Object) -> bool:
    limit = (deployment.get("spec") or {}).get("revisionHistoryLimit")
    return isinstance(limit, int) and limit != MAX_INT32


def plan_cleanup(deployment: Object, old_rss: list[Object]) -> list[Object]:
    """cleanupDeployment: the old ReplicaSets beyond revisionHistoryLimit, lowest
    revision first, that are scaled to zero with no pod left."""
    if not has_revision_history_limit(deployment):
        return []
    cleanable = [rs for rs in old_rss if not meta(rs).get("deletionTimestamp")]
    excess = len(cleanable) - int((deployment.get("spec") or {})["revisionHistoryLimit"])
    if excess <= 0:
        return []
    by_revision = sorted(
        cleanable, key=lambda rs: (revision(rs), _created(rs), meta(rs).get("name", ""))
    )
    doomed = []
    for rs in by_revision[:excess]:
        if (
            status_count(rs, "replicas") != 0
            or spec_replicas(rs) != 0
            or int(meta(rs).get("generation") or 0) > status_count(rs, "observedGeneration")
        ):
            continue
        doomed.append(rs)
    return doomed


# -- annotations -----------------------------------------------------------------------


def replicas_annotations_need_update(rs: Object, desired: int, maximum: int) -> bool:
    annotations = meta(rs).get("annotations") or {}
    return annotations.get(DESIRED_REPLICAS) != str(desired) or annotations.get(
        MAX_REPLICAS
    ) != str(maximum)


def set_replicas_annotations(annotations: dict[str, str], desired: int, maximum: int) -> bool:
    changed = False
    for key, value in ((DESIRED_REPLICAS, str(desired)), (MAX_REPLICAS, str(maximum))):
        if annotations.get(key) != value:
            annotations[key] = value
            changed = True
    return changed


def new_replica_set_annotations(
    deployment: Object, rs: Object, new_revision: int, *, exists: bool
) -> tuple[dict[str, str], bool]:
    """SetNewReplicaSetAnnotations: the new ReplicaSet's annotations (the Deployment's,
    the revision, the revisions it had before when rolled back to, replica counts for a
    set about to be created) and whether they changed."""
    annotations = dict(meta(rs).get("annotations") or {})
    changed = False
    for key, value in (meta(deployment).get("annotations") or {}).items():
        if key in SKIPPED_ANNOTATIONS or annotations.get(key) == value:
            continue
        annotations[key] = value
        changed = True
    previous = annotations.get(REVISION)
    try:
        previous_number = int(previous) if previous is not None and previous != "" else 0
    except ValueError:
        return annotations, False
    if previous_number < new_revision:
        annotations[REVISION] = str(new_revision)
        changed = True
        if previous is not None:
            history = annotations.get(REVISION_HISTORY, "")
            annotations[REVISION_HISTORY] = _append_revision(history, previous)
    if not exists:
        replicas = spec_replicas(deployment)
        changed = (
            set_replicas_annotations(annotations, replicas, replicas + max_surge(deployment))
            or changed
        )
    return annotations, changed


def _append_revision(history: str, revision_text: str) -> str:
    """Add a revision to the comma-separated history, dropping the oldest entries to
    stay within MAX_REVISION_HISTORY_CHARS (and not adding it when it cannot fit)."""
    if not history:
        return revision_text
    revisions = history.split(",")
    total = len(history) + len(revision_text) + 1
    start = 0
    while total > MAX_REVISION_HISTORY_CHARS and start < len(revisions):
        total -= len(revisions[start]) + 1
        start += 1
    if total > MAX_REVISION_HISTORY_CHARS:
        return history
    return ",".join([*revisions[start:], revision_text])


def new_replica_set(deployment: Object, old_rss: list[Object], reference: dict[str, Any]) -> Object:
    """The ReplicaSet a Deployment creates for its current template: named
    `<deployment>-<hash>` so that creating it twice fails instead of duplicating it."""
    d_meta = meta(deployment)
    spec = deployment.get("spec") or {}
    template = copy.deepcopy(spec.get("template") or {})
    collision_count = (deployment.get("status") or {}).get("collisionCount")
    template_hash = pod_template_hash(template, collision_count)
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {
        **(template_meta.get("labels") or {}),
        POD_TEMPLATE_HASH: template_hash,
    }
    selector = copy.deepcopy(spec.get("selector") or {})
    selector["matchLabels"] = {
        **(selector.get("matchLabels") or {}),
        POD_TEMPLATE_HASH: template_hash,
    }
    rs: Object = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"{d_meta.get('name', '')}-{template_hash}",
            "namespace": d_meta.get("namespace", ""),
            "ownerReferences": [reference],
            "labels": dict(template_meta["labels"]),
        },
        "spec": {
            "replicas": 0,
            "minReadySeconds": int(spec.get("minReadySeconds") or 0),
            "selector": selector,
            "template": template,
        },
    }
    rs["spec"]["replicas"] = new_replica_set_replicas(deployment, [*old_rss, rs], rs)
    annotations, _ = new_replica_set_annotations(
        deployment, rs, max_revision(old_rss) + 1, exists=False
    )
    rs["metadata"]["annotations"] = annotations
    return rs


# -- conditions ------------------------------------------------------------------------


def new_condition(
    type_: str, status: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    stamp = rfc3339(now)
    return {
        "type": type_,
        "status": status,
        "lastUpdateTime": stamp,
        "lastTransitionTime": stamp,
        "reason": reason,
        "message": message,
    }


def get_condition(status: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for condition in status.get("conditions") or []:
        if isinstance(condition, dict) and condition.get("type") == type_:
            return condition
    return None


def set_condition(status: dict[str, Any], condition: dict[str, Any]) -> None:
    """SetDeploymentCondition: nothing when status and reason are unchanged; the
    transition time is kept when only the reason changes; the condition goes last."""
    current = get_condition(status, condition["type"])
    if (
        current is not None
        and current.get("status") == condition["status"]
        and current.get("reason") == condition["reason"]
    ):
        return
    condition = dict(condition)
    if current is not None and current.get("status") == condition["status"]:
        condition["lastTransitionTime"] = current.get(
            "lastTransitionTime", condition["lastTransitionTime"]
        )
    remove_condition(status, condition["type"])
    status.setdefault("conditions", []).append(condition)


def remove_condition(status: dict[str, Any], type_: str) -> None:
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != type_]
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)


def has_progress_deadline(deployment: Object) -> bool:
    deadline = (deployment.get("spec") or {}).get("progressDeadlineSeconds")
    return isinstance(deadline, int) and deadline != MAX_INT32


def paused_condition(deployment: Object, now: datetime) -> dict[str, Any] | None:
    """checkPausedConditions: the status with an Unknown Progressing condition when the
    Deployment was just paused or resumed (so time paused never counts against the
    progress deadline); None when nothing changes."""
    if not has_progress_deadline(deployment):
        return None
    status = copy.deepcopy(deployment.get("status") or {})
    current = get_condition(status, PROGRESSING)
    if current is not None and current.get("reason") == TIMED_OUT:
        return None
    paused = bool((deployment.get("spec") or {}).get("paused"))
    paused_recorded = current is not None and current.get("reason") == PAUSED
    if paused and not paused_recorded:
        set_condition(
            status, new_condition(PROGRESSING, "Unknown", PAUSED, "Deployment is paused", now)
        )
        return status
    if not paused and paused_recorded:
        set_condition(
            status, new_condition(PROGRESSING, "Unknown", RESUMED, "Deployment is resumed", now)
        )
        return status
    return None


# -- status ----------------------------------------------------------------------------


def calculate_status(
    all_rss: list[Object | None], new_rs: Object | None, deployment: Object, now: datetime
) -> dict[str, Any]:
    """The status the ReplicaSets amount to, with the Available condition."""
    old = deployment.get("status") or {}
    available = total_status(all_rss, "availableReplicas")
    unavailable = max(total_replicas(all_rss) - available, 0)
    counts = {
        "observedGeneration": int(meta(deployment).get("generation") or 0),
        "replicas": total_status(all_rss, "replicas"),
        "updatedReplicas": total_status([new_rs], "replicas"),
        "readyReplicas": total_status(all_rss, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": unavailable,
    }
    status: dict[str, Any] = {k: v for k, v in counts.items() if v}
    if old.get("collisionCount") is not None:
        status["collisionCount"] = old["collisionCount"]
    if old.get("conditions"):
        status["conditions"] = copy.deepcopy(old["conditions"])
    if available >= spec_replicas(deployment) - max_unavailable(deployment):
        condition = new_condition(
            AVAILABLE,
            "True",
            MINIMUM_REPLICAS_AVAILABLE,
            "Deployment has minimum availability.",
            now,
        )
    else:
        condition = new_condition(
            AVAILABLE,
            "False",
            MINIMUM_REPLICAS_UNAVAILABLE,
            "Deployment does not have minimum availability.",
            now,
        )
    set_condition(status, condition)
    return status


def deployment_complete(deployment: Object, status: dict[str, Any]) -> bool:
    replicas = spec_replicas(deployment)
    return (
        int(status.get("updatedReplicas") or 0) == replicas
        and int(status.get("replicas") or 0) == replicas
        and int(status.get("availableReplicas") or 0) == replicas
        and int(status.get("observedGeneration") or 0)
        >= int(meta(deployment).get("generation") or 0)
    )


def deployment_progressing(deployment: Object, status: dict[str, Any]) -> bool:
    """More updated, ready or available replicas than last recorded, or fewer old ones."""
    old = deployment.get("status") or {}

    def count(source: dict[str, Any], field: str) -> int:
        return int(source.get(field) or 0)

    old_olds = count(old, "replicas") - count(old, "updatedReplicas")
    new_olds = count(status, "replicas") - count(status, "updatedReplicas")
    return (
        count(status, "updatedReplicas") > count(old, "updatedReplicas")
        or new_olds < old_olds
        or count(status, "readyReplicas") > count(old, "readyReplicas")
        or count(status, "availableReplicas") > count(old, "availableReplicas")
    )


def deployment_timed_out(deployment: Object, status: dict[str, Any], now: datetime) -> bool:
    if not has_progress_deadline(deployment):
        return False
    condition = get_condition(status, PROGRESSING)
    if condition is None or condition.get("reason") == NEW_RS_AVAILABLE:
        return False
    if condition.get("reason") == TIMED_OUT:
        return True
    since = timestamp(condition.get("lastUpdateTime"))
    if since is None:
        return False
    deadline = timedelta(seconds=int((deployment.get("spec") or {})["progressDeadlineSeconds"]))
    return since + deadline < now


def _replica_failure(all_rss: list[Object | None], new_rs: Object | None) -> dict[str, Any] | None:
    """The ReplicaFailure condition of the new ReplicaSet, else of any other."""
    for candidates in ([new_rs], all_rss):
        for rs in candidates:
            if rs is None:
                continue
            for condition in (rs.get("status") or {}).get("conditions") or []:
                if condition.get("type") == REPLICA_FAILURE:
                    return {
                        "type": REPLICA_FAILURE,
                        "status": condition.get("status", ""),
                        "lastUpdateTime": condition.get("lastTransitionTime", ""),
                        "lastTransitionTime": condition.get("lastTransitionTime", ""),
                        "reason": condition.get("reason", ""),
                        "message": condition.get("message", ""),
                    }
    return None


def rollout_status(
    all_rss: list[Object | None], new_rs: Object | None, deployment: Object, now: datetime
) -> dict[str, Any]:
    """syncRolloutStatus: the status with the Progressing condition brought up to date
    (progressing, complete, or past its deadline) and the ReplicaSets' failures."""
    status = calculate_status(all_rss, new_rs, deployment, now)
    if not has_progress_deadline(deployment):
        remove_condition(status, PROGRESSING)
    current = get_condition(deployment.get("status") or {}, PROGRESSING)
    complete_already = (
        int(status.get("replicas") or 0) == int(status.get("updatedReplicas") or 0)
        and current is not None
        and current.get("reason") == NEW_RS_AVAILABLE
    )
    name = meta(deployment).get("name", "")
    subject = (
        f'ReplicaSet "{meta(new_rs).get("name", "")}"'
        if new_rs is not None
        else f'Deployment "{name}"'
    )
    if has_progress_deadline(deployment) and not complete_already:
        if deployment_complete(deployment, status):
            set_condition(
                status,
                new_condition(
                    PROGRESSING,
                    "True",
                    NEW_RS_AVAILABLE,
                    f"{subject} has successfully progressed.",
                    now,
                ),
            )
        elif deployment_progressing(deployment, status):
            condition = new_condition(
                PROGRESSING, "True", REPLICA_SET_UPDATED, f"{subject} is progressing.", now
            )
            if current is not None:
                # Progress refreshes lastUpdateTime even when the reason stays the same.
                if current.get("status") == "True":
                    condition["lastTransitionTime"] = current.get(
                        "lastTransitionTime", condition["lastTransitionTime"]
                    )
                remove_condition(status, PROGRESSING)
            set_condition(status, condition)
        elif deployment_timed_out(deployment, status, now):
            set_condition(
                status,
                new_condition(
                    PROGRESSING, "False", TIMED_OUT, f"{subject} has timed out progressing.", now
                ),
            )
    failure = _replica_failure(all_rss, new_rs)
    if failure is not None:
        set_condition(status, failure)
    else:
        remove_condition(status, REPLICA_FAILURE)
    return status


def stuck_recheck_after(deployment: Object, status: dict[str, Any], now: datetime) -> float | None:
    """requeueStuckDeployment: with no progress seen, when to look again to tell whether
    the deadline passed (None: no deadline, rollout complete, or already timed out)."""
    current = get_condition(deployment.get("status") or {}, PROGRESSING)
    if not has_progress_deadline(deployment) or current is None:
        return None
    if deployment_complete(deployment, status) or current.get("reason") == TIMED_OUT:
        return None
    since = timestamp(current.get("lastUpdateTime"))
    if since is None:
        return None
    deadline = since + timedelta(
        seconds=int((deployment.get("spec") or {})["progressDeadlineSeconds"])
    )
    after = (deadline - now).total_seconds()
    # A second more, so the deadline has surely passed when we look.
    return max(after, 0.0) + 1.0


def status_equal(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Statuses compared as their wire forms are (absent and zero alike)."""
    return bool(_without_empties(_without_zeros(a)) == _without_empties(_without_zeros(b)))


def _without_zeros(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if v != 0 or isinstance(v, bool)}
