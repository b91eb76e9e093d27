"""Strategies of the apps API group, in the order kube-apiserver's discovery lists them."""

from timonel.kinds.apps.controllerrevision import ControllerRevisionStrategy
from timonel.kinds.apps.daemonset import DaemonSetStrategy
from timonel.kinds.apps.deployment import DeploymentStrategy
from timonel.kinds.apps.replicaset import ReplicaSetStrategy
from timonel.kinds.apps.statefulset import StatefulSetStrategy
from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = (
    ControllerRevisionStrategy,
    DaemonSetStrategy,
    DeploymentStrategy,
    ReplicaSetStrategy,
    StatefulSetStrategy,
)
