"""RBAC evaluation: who may do what, from Roles, ClusterRoles and their bindings.

Pure functions over plain objects. `PolicyIndex.build` resolves every binding to the
rules of the role it names once, keyed by subject, so that a request costs a few dict
lookups and a scan of the rules that apply to that user:

- a ServiceAccount subject is the user `system:serviceaccount:<namespace>:<name>`;
- ClusterRoleBindings grant everywhere, RoleBindings in their namespace only (a
  RoleBinding may name a ClusterRole: its rules then apply in that namespace);
- a ClusterRole with an aggregationRule holds the rules of every ClusterRole its
  selectors match, besides its own.

The answers and their wording follow kube-apiserver's RBAC authorizer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from timonel.api.objects import Object
from timonel.api.selectors import label_selector_from_object
from timonel.api.user import UserInfo

_RESOURCE_RULE_FIELDS = ("apiGroups", "resources", "resourceNames")
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
ALL = "*"


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a request asks to do (kube's authorizer.Attributes)."""

    verb: str
    is_resource: bool = True
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    @classmethod
    def from_review_spec(cls, spec: dict[str, Any]) -> Attributes:
        """From a SubjectAccessReviewSpec's resourceAttributes / nonResourceAttributes."""
        resource = spec.get("resourceAttributes")
        if isinstance(resource, dict):
            return cls(
                verb=str(resource.get("verb") or ""),
                group=str(resource.get("group") or ""),
                version=str(resource.get("version") or ""),
                resource=str(resource.get("resource") or ""),
                subresource=str(resource.get("subresource") or ""),
                namespace=str(resource.get("namespace") or ""),
                name=str(resource.get("name") or ""),
            )
        non_resource = spec.get("nonResourceAttributes") or {}
        return cls(
            verb=str(non_resource.get("verb") or ""),
            is_resource=False,
            path=str(non_resource.get("path") or ""),
        )


@dataclass(frozen=True, slots=True)
class Rule:
    """A PolicyRule with its lists as sets, and where it came from (for reasons)."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]
    non_resource_urls: tuple[str, ...]
    source: str = ""
    # The rule as written, for listing it back in its own order.
    written: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_object(cls, rule: dict[str, Any], source: str = "") -> Rule:
        return cls(
            verbs=frozenset(rule.get("verbs") or ()),
            api_groups=frozenset(rule.get("apiGroups") or ()),
            resources=frozenset(rule.get("resources") or ()),
            resource_names=frozenset(rule.get("resourceNames") or ()),
            non_resource_urls=tuple(rule.get("nonResourceURLs") or ()),
            source=source,
            written=rule,
        )

    def as_object(self) -> dict[str, Any]:
        """The rule as a SubjectRulesReview lists it (empty lists left out)."""
        written = self.written
        out: dict[str, Any] = {"verbs": list(written.get("verbs") or ())}
        names = ("nonResourceURLs",) if self.non_resource_urls else _RESOURCE_RULE_FIELDS
        for name in names:
            if written.get(name):
                out[name] = list(written[name])
        return out

    def allows(self, attributes: Attributes) -> bool:
        if ALL not in self.verbs and attributes.verb not in self.verbs:
            return False
        if not attributes.is_resource:
            return url_matches(self.non_resource_urls, attributes.path)
        if ALL not in self.api_groups and attributes.group not in self.api_groups:
            return False
        if not resource_matches(self.resources, attributes.resource, attributes.subresource):
            return False
        return not self.resource_names or attributes.name in self.resource_names


def resource_matches(resources: frozenset[str], resource: str, subresource: str) -> bool:
    """`*`, the exact `resource[/subresource]`, or `*/subresource`."""
    if ALL in resources:
        return True
    if not subresource:
        return resource in resources
    return f"{resource}/{subresource}" in resources or f"*/{subresource}" in resources


def url_matches(urls: Iterable[str], path: str) -> bool:
    """`*`, the exact path, or a prefix ending in `*`."""
    for url in urls:
        if url in (ALL, path):
            return True
        if url.endswith(ALL) and path.startswith(url[:-1]):
            return True
    return False


def subject_keys(user: UserInfo) -> list[tuple[str, str]]:
    """The binding subjects a user matches, as (kind, name); service accounts are
    indexed under their user name."""
    keys = [("User", user.name)]
    keys.extend(("Group", group) for group in user.groups)
    return keys


def _subject_key(subject: dict[str, Any], binding_namespace: str) -> tuple[str, str] | None:
    kind, name = subject.get("kind"), str(subject.get("name") or "")
    if not name:
        return None
    if kind == "ServiceAccount":
        # A RoleBinding's service account subject defaults to the binding's namespace.
        namespace = str(subject.get("namespace") or binding_namespace)
        if not namespace:
            return None
        return ("User", f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
    if kind in ("User", "Group"):
        return (kind, name)
    return None


def _describe_subject(subject: dict[str, Any], binding_namespace: str) -> str:
    name = str(subject.get("name") or "")
    if subject.get("kind") == "ServiceAccount":
        namespace = str(subject.get("namespace") or binding_namespace)
        return f'ServiceAccount "{namespace}/{name}"'
    return f'{subject.get("kind")} "{name}"'


def aggregated_rules(cluster_roles: Iterable[Object]) -> dict[str, list[dict[str, Any]]]:
    """Each ClusterRole's effective rules: its own, plus, when it has an aggregationRule,
    the effective rules of every ClusterRole its selectors match. That is what the
    aggregation controller settles to (it writes an aggregated role's rules into the role,
    where other aggregations see them: `edit` holds `view`'s rules)."""
    roles: dict[str, Object] = {}
    for role in cluster_roles:
        if isinstance(role, dict):
            roles[(role.get("metadata") or {}).get("name", "")] = role
    effective: dict[str, list[dict[str, Any]]] = {}

    def resolve(name: str, visiting: frozenset[str]) -> list[dict[str, Any]]:
        if name in effective:
            return effective[name]
        role = roles[name]
        rules = [r for r in role.get("rules") or [] if isinstance(r, dict)]
        aggregation = role.get("aggregationRule")
        if isinstance(aggregation, dict):
            rules = list(rules)
            for selector_object in aggregation.get("clusterRoleSelectors") or []:
                try:
                    selector = label_selector_from_object(selector_object)
                except Exception:
                    continue
                for other_name, other in roles.items():
                    if other_name == name or other_name in visiting:
                        continue
                    labels = (other.get("metadata") or {}).get("labels") or {}
                    if not selector.matches(labels):
                        continue
                    for rule in resolve(other_name, visiting | {name}):
                        if rule not in rules:
                            rules.append(rule)
        if not visiting:
            effective[name] = rules
        return rules

    for name in roles:
        resolve(name, frozenset())
    return effective


@dataclass
class _Grant:
    """The rules one binding gives its subjects, or why it gives none."""

    rules: tuple[Rule, ...]
    missing_role: str = ""


@dataclass
class PolicyIndex:
    """Rules by subject: cluster-wide, and per namespace."""

    cluster: dict[tuple[str, str], list[_Grant]] = field(default_factory=dict)
    namespaced: dict[tuple[str, str, str], list[_Grant]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        roles: Iterable[Object],
        cluster_roles: Iterable[Object],
        role_bindings: Iterable[Object],
        cluster_role_bindings: Iterable[Object],
    ) -> PolicyIndex:
        index = cls()
        cluster_rules = aggregated_rules(cluster_roles)
        role_rules: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for role in roles:
            meta = role.get("metadata") or {}
            role_rules[(meta.get("namespace", ""), meta.get("name", ""))] = [
                r for r in role.get("rules") or [] if isinstance(r, dict)
            ]
        for binding in cluster_role_bindings:
            meta = binding.get("metadata") or {}
            ref = binding.get("roleRef") or {}
            role_name = str(ref.get("name") or "")
            found = cluster_rules.get(role_name) if ref.get("kind") == "ClusterRole" else None
            for subject in binding.get("subjects") or []:
                key = _subject_key(subject, "")
                if key is None:
                    continue
                source = (
                    f'ClusterRoleBinding "{meta.get("name", "")}" of ClusterRole '
                    f'"{role_name}" to {_describe_subject(subject, "")}'
                )
                index.cluster.setdefault(key, []).append(
                    _grant(found, source, f'clusterrole.rbac.authorization.k8s.io "{role_name}"')
                )
        for binding in role_bindings:
            meta = binding.get("metadata") or {}
            namespace = meta.get("namespace", "")
            ref = binding.get("roleRef") or {}
            role_name = str(ref.get("name") or "")
            if ref.get("kind") == "ClusterRole":
                found = cluster_rules.get(role_name)
                missing = f'clusterrole.rbac.authorization.k8s.io "{role_name}"'
            else:
                found = role_rules.get((namespace, role_name))
                missing = f'role.rbac.authorization.k8s.io "{role_name}"'
            for subject in binding.get("subjects") or []:
                key = _subject_key(subject, namespace)
                if key is None:
                    continue
                source = (
                    f'RoleBinding "{meta.get("name", "")}/{namespace}" of {ref.get("kind")} '
                    f'"{role_name}" to {_describe_subject(subject, namespace)}'
                )
                index.namespaced.setdefault((namespace, *key), []).append(
                    _grant(found, source, missing)
                )
        return index

    def grants(self, user: UserInfo, namespace: str) -> list[_Grant]:
        """Every grant that applies to `user` in `namespace` ("" for cluster scope)."""
        found: list[_Grant] = []
        for key in subject_keys(user):
            found.extend(self.cluster.get(key, ()))
            if namespace:
                found.extend(self.namespaced.get((namespace, *key), ()))
        return found

    def authorize(self, user: UserInfo, attributes: Attributes) -> tuple[bool, str]:
        """(allowed, reason): the reason names the allowing binding, or on a denial the
        roles the user's bindings name that do not exist."""
        missing: list[str] = []
        namespace = attributes.namespace if attributes.is_resource else ""
        for grant in self.grants(user, namespace):
            if grant.missing_role:
                if grant.missing_role not in missing:
                    missing.append(grant.missing_role)
                continue
            for rule in grant.rules:
                if rule.allows(attributes):
                    return True, f"RBAC: allowed by {rule.source}"
        if not missing:
            return False, ""
        if len(missing) == 1:
            return False, f"RBAC: {missing[0]} not found"
        return False, "RBAC: [" + ", ".join(f"{m} not found" for m in missing) + "]"

    def rules(self, user: UserInfo, namespace: str) -> tuple[list[Rule], list[str]]:
        """The rules that apply to `user` in `namespace`, and the roles found missing."""
        rules: list[Rule] = []
        missing: list[str] = []
        for grant in self.grants(user, namespace):
            if grant.missing_role:
                missing.append(f"{grant.missing_role} not found")
            rules.extend(grant.rules)
        return rules, missing


def _grant(rules: list[dict[str, Any]] | None, source: str, missing_role: str) -> _Grant:
    if rules is None:
        return _Grant((), missing_role)
    return _Grant(tuple(Rule.from_object(rule, source) for rule in rules))


def forbidden_message(user: UserInfo, attributes: Attributes, reason: str = "") -> str:
    """The message of kube-apiserver's 403 for a request the authorizer refused."""
    if not attributes.is_resource:
        detail = f'User "{user.name}" cannot {attributes.verb} path "{attributes.path}"'
        return f"forbidden: {detail}" + (f": {reason}" if reason else "")
    resource = attributes.resource
    if attributes.subresource:
        resource = f"{resource}/{attributes.subresource}"
    where = (
        f'in the namespace "{attributes.namespace}"'
        if attributes.namespace
        else "at the cluster scope"
    )
    detail = (
        f'User "{user.name}" cannot {attributes.verb} resource "{resource}" '
        f'in API group "{attributes.group}" {where}'
    )
    if reason:
        detail = f"{detail}: {reason}"
    qualified = (
        f"{attributes.resource}.{attributes.group}" if attributes.group else attributes.resource
    )
    if attributes.name:
        return f'{qualified} "{attributes.name}" is forbidden: {detail}'
    return f"{qualified} is forbidden: {detail}"
