"""Strategies of the rbac API group."""

from timonel.kinds.base import Strategy
from timonel.kinds.rbac.clusterrole import ClusterRoleStrategy
from timonel.kinds.rbac.clusterrolebinding import ClusterRoleBindingStrategy
from timonel.kinds.rbac.role import RoleStrategy
from timonel.kinds.rbac.rolebinding import RoleBindingStrategy

STRATEGIES: tuple[type[Strategy], ...] = (
    ClusterRoleBindingStrategy,
    ClusterRoleStrategy,
    RoleBindingStrategy,
    RoleStrategy,
)
