"""ResourceQuota admission: whether a create fits the namespace's quotas, and the usage
each quota records for it (kube's admission/plugin/resourcequota CheckRequest).

A quota takes part once the quota controller has published status.hard; a quota whose
scopes or resources do not concern the object is skipped. For the others:
- a pod must state every cpu/memory request or limit the quota tracks
  ("failed quota: NAME: must specify ...");
- the quota must know the current usage of what it tracks ("status unknown for quota");
- used + requested must stay within hard for every resource the object uses
  ("exceeded quota: NAME, requested: pods=1, used: pods=2, limited: pods=2").
An admitted create is charged right away (status.used grows) so that concurrent creates
see each other; the quota controller later recounts from the objects themselves.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime

from timonel.api import errors
from timonel.api.objects import Object
from timonel.kinds.core import quotausage
from timonel.kinds.core.quotausage import exceeded, mask, parse_resource_list, pretty_print


@dataclass(frozen=True)
class QuotaCharge:
    """A quota (as read, with its resourceVersion) and the status.used to write for it."""

    quota: Object
    used: dict[str, str]

    def updated_quota(self) -> Object:
        updated = copy.deepcopy(self.quota)
        updated.setdefault("status", {})["used"] = dict(self.used)
        return updated


def forbidden(group: str, plural: str, name: str, detail: str) -> errors.StatusError:
    """admission.NewForbidden: `pods "web" is forbidden: <detail>`."""
    details: dict[str, str] = {"name": name, "kind": plural}
    if group:
        details["group"] = group
    return errors.StatusError(
        403,
        "Forbidden",
        f'{errors.qualified_resource(plural, group)} "{name}" is forbidden: {detail}',
        details=details,
    )


def _object_name(obj: Object) -> str:
    meta = obj.get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "Unknown")


def _quota_name(quota: Object) -> str:
    return str((quota.get("metadata") or {}).get("name", ""))


def charge_create(
    quotas: list[Object], group: str, plural: str, obj: Object, now: datetime
) -> list[QuotaCharge]:
    """The charges a create of `obj` makes; raises 403 Forbidden when it does not fit."""
    name = _object_name(obj)
    interesting: list[Object] = []
    for quota in quotas:
        status = quota.get("status") or {}
        hard = parse_resource_list(status.get("hard"))
        if not quotausage.quota_applies(quota, group, plural, obj, hard):
            continue
        restricted = quotausage.matching_resources(group, plural, hard)
        if not group and plural == "pods":
            missing = quotausage.missing_pod_resources(obj, restricted)
            if missing:
                raise forbidden(
                    group, plural, name, f"failed quota: {_quota_name(quota)}: {missing}"
                )
        used = parse_resource_list(status.get("used"))
        if any(resource not in used for resource in restricted):
            raise forbidden(
                group,
                plural,
                name,
                f"status unknown for quota: {_quota_name(quota)}, resources: {','.join(sorted(restricted))}",
            )
        interesting.append(quota)
    if not interesting:
        return []
    delta = quotausage.usage_of(group, plural, obj, now)
    negative = sorted(resource for resource, value in delta.items() if value.sign() < 0)
    if negative:
        raise forbidden(
            group, plural, name, f"quota usage is negative for resource(s): {','.join(negative)}"
        )
    delta = {resource: value for resource, value in delta.items() if not value.is_zero()}
    if not delta:
        return []
    charges: list[QuotaCharge] = []
    for quota in interesting:
        status = quota.get("status") or {}
        hard = parse_resource_list(status.get("hard"))
        used = parse_resource_list(status.get("used"))
        requested = mask(delta, hard)
        new_used = quotausage.add(used, requested)
        over = exceeded(mask(new_used, requested), hard)
        if over:
            raise forbidden(
                group,
                plural,
                name,
                f"exceeded quota: {_quota_name(quota)}, requested: {pretty_print(mask(requested, over))}, "
                f"used: {pretty_print(mask(used, over))}, limited: {pretty_print(mask(hard, over))}",
            )
        if requested:
            charges.append(QuotaCharge(quota, quotausage.render(new_used)))
    return charges
