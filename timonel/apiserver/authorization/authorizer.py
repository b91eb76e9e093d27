"""The API server's authorizer: RBAC over the watch caches of the RBAC kinds.

kube-apiserver's chain, in order: members of `system:masters` may do everything; then
RBAC; anything else is refused with a 403 Status. Impersonation headers (`kubectl --as`)
are honoured for users the authorizer lets `impersonate`.

The policy index is rebuilt only after an RBAC object changed (each of the four caches
is followed by a watch that marks the index stale), so a request costs a dict lookup per
subject key and a scan of the rules bound to that user.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote

from timonel.api import errors
from timonel.api.objects import Object
from timonel.api.user import SYSTEM_AUTHENTICATED, SYSTEM_MASTERS, UserInfo
from timonel.apiserver.authorization.rbac import (
    SERVICE_ACCOUNT_PREFIX,
    SERVICE_ACCOUNTS_GROUP,
    Attributes,
    PolicyIndex,
    aggregated_rules,
    forbidden_message,
)
from timonel.apiserver.requestinfo import RequestInfo
from timonel.kinds.authorization.authorizer import Decision, RulesResult

if TYPE_CHECKING:
    from timonel.apiserver.context import ApiRequest
    from timonel.apiserver.server import ApiServer
    from timonel.apiserver.watchcache import WatchCache

log = logging.getLogger(__name__)

RBAC_GROUP: Final = "rbac.authorization.k8s.io"
RBAC_RESOURCES: Final = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
IMPERSONATE_USER: Final = "Impersonate-User"
IMPERSONATE_GROUP: Final = "Impersonate-Group"
IMPERSONATE_UID: Final = "Impersonate-Uid"
IMPERSONATE_EXTRA_PREFIX: Final = "Impersonate-Extra-"

# The most RBAC answers remembered between changes of the RBAC objects.
_DECISIONS_LIMIT = 32768

# (group, version, plural) -> the watch cache holding that resource.
CacheLookup = Callable[[str, str, str], "WatchCache | None"]


def request_attributes(info: RequestInfo) -> Attributes:
    """The authorizer's view of a request (kube's RequestInfo → Attributes)."""
    if not info.is_resource:
        return Attributes(verb=info.verb, is_resource=False, path=info.path)
    namespace = info.namespace
    if info.resource == "namespaces" and info.name and not namespace:
        # A namespace is its own namespace: a RoleBinding there may grant reading it.
        namespace = info.name
    return Attributes(
        verb=info.verb,
        group=info.group,
        version=info.version,
        resource=info.resource,
        subresource=info.subresource,
        namespace=namespace,
        name=info.name,
        path=info.path,
    )


def forbidden(user: UserInfo, attributes: Attributes, reason: str = "") -> errors.StatusError:
    """kube-apiserver's 403 for a refused request, details naming the resource."""
    details: dict[str, Any] = {}
    if attributes.is_resource:
        if attributes.name:
            details["name"] = attributes.name
        if attributes.group:
            details["group"] = attributes.group
        details["kind"] = attributes.resource
    return errors.StatusError(
        403,
        "Forbidden",
        forbidden_message(user, attributes, reason),
        # A non-resource refusal still carries (empty) details, as kube's NewForbidden.
        details=details,
    )


class RBACAuthorizer:
    """Decides requests; see the module docstring. `start()` once the caches are ready."""

    def __init__(self, caches: CacheLookup) -> None:
        self._caches = caches
        self._index = PolicyIndex()
        self._stale = True
        # The index's answers so far, by (user name, groups, attributes): RBAC reads
        # nothing else, and a rebuilt index starts afresh.
        self._decisions: dict[tuple[str, tuple[str, ...], Attributes], tuple[bool, str]] = {}
        self._followers: list[asyncio.Task[None]] = []
        # Writes a ClusterRole back (the aggregation controller's job): set by the control
        # plane, which writes through the API as itself.
        self.write_cluster_role: Callable[[Object], Awaitable[None]] | None = None
        self._aggregating: asyncio.Task[None] | None = None

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        for plural in RBAC_RESOURCES:
            cache = self._caches(RBAC_GROUP, "v1", plural)
            if cache is None:
                continue
            await cache.ready.wait()
            self._followers.append(
                asyncio.create_task(self._follow(cache, plural), name=f"rbac informer {plural}")
            )
        self._stale = True
        self._aggregate_soon()

    async def stop(self) -> None:
        tasks = [*self._followers, *([self._aggregating] if self._aggregating else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._followers.clear()
        self._aggregating = None

    async def _follow(self, cache: WatchCache, plural: str) -> None:
        while True:
            try:
                await cache.ready.wait()
                revision = cache.revision
                self.policy_changed()
                async for event in cache.watch(after=revision):
                    if event.type != "BOOKMARK":
                        self.policy_changed()
                        if plural == "clusterroles":
                            self._aggregate_soon()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("following RBAC objects failed; retrying")
            self._stale = True
            await asyncio.sleep(0.1)

    def _aggregate_soon(self) -> None:
        if self.write_cluster_role is None:
            return
        if self._aggregating is None or self._aggregating.done():
            self._aggregating = asyncio.create_task(self._aggregate(), name="rbac aggregation")

    async def _aggregate(self) -> None:
        """Write into each aggregated ClusterRole the rules its selectors gather, as the
        clusterrole-aggregation controller does, so that reading the role shows them."""
        await asyncio.sleep(0.05)  # let a burst of changes settle
        assert self.write_cluster_role is not None
        roles = self._items("clusterroles")
        effective = aggregated_rules(roles)
        for role in roles:
            if not isinstance(role.get("aggregationRule"), dict):
                continue
            name = (role.get("metadata") or {}).get("name", "")
            wanted = effective.get(name, [])
            if (role.get("rules") or []) != wanted:
                try:
                    await self.write_cluster_role({**role, "rules": wanted})
                except Exception:
                    log.exception("cannot aggregate ClusterRole %s", name)

    def policy_changed(self) -> None:
        """An RBAC object changed: the next decision rebuilds the index (and forgets
        the answers given so far)."""
        self._stale = True

    def _current(self) -> PolicyIndex:
        if self._stale:
            self._stale = False
            self._decisions = {}
            self._index = PolicyIndex.build(
                roles=self._items("roles"),
                cluster_roles=self._items("clusterroles"),
                role_bindings=self._items("rolebindings"),
                cluster_role_bindings=self._items("clusterrolebindings"),
            )
        return self._index

    def _items(self, plural: str) -> list[Any]:
        cache = self._caches(RBAC_GROUP, "v1", plural)
        return [] if cache is None else cache.list().items

    # -- decisions --------------------------------------------------------------------

    def authorize(self, user: UserInfo, attributes: Attributes) -> tuple[bool, str]:
        """(allowed, reason) as kube-apiserver's authorizer chain answers."""
        if SYSTEM_MASTERS in user.groups:
            return True, ""
        index = self._current()
        key = (user.name, user.groups, attributes)
        decision = self._decisions.get(key)
        if decision is None:
            decision = index.authorize(user, attributes)
            if len(self._decisions) >= _DECISIONS_LIMIT:
                self._decisions.clear()
            self._decisions[key] = decision
        return decision

    def review(self, user: UserInfo, spec: dict[str, Any]) -> Decision:
        """A SubjectAccessReview's answer for `spec`'s attributes."""
        allowed, reason = self.authorize(user, Attributes.from_review_spec(spec))
        return Decision(allowed=allowed, reason=reason)

    def rules_review(self, user: UserInfo, namespace: str) -> RulesResult:
        """A SelfSubjectRulesReview's answer: the RBAC rules for `user` in `namespace`."""
        rules, missing = self._current().rules(user, namespace)
        resource_rules = tuple(r.as_object() for r in rules if not r.non_resource_urls)
        non_resource_rules = tuple(r.as_object() for r in rules if r.non_resource_urls)
        return RulesResult(
            resource_rules=resource_rules,
            non_resource_rules=non_resource_rules,
            incomplete=bool(missing),
            evaluation_error=", ".join(missing),
        )

    # -- requests ---------------------------------------------------------------------

    def admit(self, request: ApiRequest, info: RequestInfo) -> None:
        """Apply impersonation headers, then authorize the request as its (possibly
        impersonated) user. Raises the 403 Status on a refusal."""
        user = request.user
        assert user is not None
        headers = request.headers
        if IMPERSONATE_USER in headers or IMPERSONATE_GROUP in headers:
            request.impersonator = user
            user = self.impersonate(user, request)
            request.user = user
        if SYSTEM_MASTERS in user.groups:
            request.authorization = (True, "")  # as `authorize` answers, sooner
            return
        attributes = request_attributes(info)
        allowed, reason = self.authorize(user, attributes)
        request.authorization = (allowed, reason)
        if not allowed:
            raise forbidden(user, attributes, reason)

    def impersonate(self, user: UserInfo, request: ApiRequest) -> UserInfo:
        """The user the Impersonate-* headers ask for, if `user` may impersonate each
        part of it (verb `impersonate` on users, groups, serviceaccounts, uids and
        userextras/<key>)."""
        headers = request.headers
        name = headers.get(IMPERSONATE_USER, "")
        groups = [g for g in headers.getall(IMPERSONATE_GROUP, []) if g]
        uid = headers.get(IMPERSONATE_UID, "")
        extra: dict[str, list[str]] = {}
        for key, value in headers.items():
            if key.lower().startswith(IMPERSONATE_EXTRA_PREFIX.lower()):
                # Header names cannot hold every key: kubectl percent-encodes them.
                extra_key = unquote(key[len(IMPERSONATE_EXTRA_PREFIX) :]).lower()
                extra.setdefault(extra_key, []).append(value)
        if not name:
            raise errors.internal_error(
                "requested "
                + ", ".join(f"{{{IMPERSONATE_GROUP} {g}}}" for g in groups)
                + " without impersonating a user"
            )
        checks: list[Attributes] = []
        if name.startswith(SERVICE_ACCOUNT_PREFIX) and name.count(":") == 3:
            _, _, namespace, account = name.split(":")
            checks.append(
                Attributes(
                    "impersonate", resource="serviceaccounts", namespace=namespace, name=account
                )
            )
        else:
            checks.append(Attributes("impersonate", resource="users", name=name))
        checks.extend(Attributes("impersonate", resource="groups", name=g) for g in groups)
        if uid:
            checks.append(
                Attributes("impersonate", group="authentication.k8s.io", resource="uids", name=uid)
            )
        for key, values in extra.items():
            checks.extend(
                Attributes(
                    "impersonate",
                    group="authentication.k8s.io",
                    resource="userextras",
                    subresource=key,
                    name=value,
                )
                for value in values
            )
        for attributes in checks:
            allowed, reason = self.authorize(user, attributes)
            if not allowed:
                raise forbidden(user, attributes, reason)
        if name.startswith(SERVICE_ACCOUNT_PREFIX) and not groups and name.count(":") == 3:
            namespace = name.split(":")[2]
            groups = [SERVICE_ACCOUNTS_GROUP, f"{SERVICE_ACCOUNTS_GROUP}:{namespace}"]
        if name != "system:anonymous" and SYSTEM_AUTHENTICATED not in groups:
            groups.append(SYSTEM_AUTHENTICATED)
        return UserInfo(name, tuple(groups), uid, {k: tuple(v) for k, v in extra.items()})


def install(api: ApiServer) -> RBACAuthorizer:
    """An RBAC authorizer over `api`'s watch caches, deciding its requests and answering
    its access reviews. Call its `start()` once `api` has started."""

    def cache(group: str, version: str, plural: str) -> WatchCache | None:
        store = api.store_for(group, version, plural)
        return None if store is None else store.cache

    authorizer = RBACAuthorizer(cache)
    api.authorizer = authorizer
    for strategy in api.registry:
        if strategy.group != "authorization.k8s.io":
            continue
        if hasattr(strategy, "authorizer"):
            strategy.authorizer = authorizer.review
        if hasattr(strategy, "rules_resolver"):
            strategy.rules_resolver = authorizer.rules_review
    return authorizer
