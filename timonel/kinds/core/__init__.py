"""Strategies of the core (v1) API group, in the order kube-apiserver lists them in
/api/v1 discovery (alphabetical by resource)."""

from timonel.kinds.base import Strategy
from timonel.kinds.core.configmap import ConfigMapStrategy
from timonel.kinds.core.endpoints import EndpointsStrategy
from timonel.kinds.core.event import EventStrategy
from timonel.kinds.core.limitrange import LimitRangeStrategy
from timonel.kinds.core.namespace import NamespaceStrategy
from timonel.kinds.core.node import NodeStrategy
from timonel.kinds.core.persistentvolume import PersistentVolumeStrategy
from timonel.kinds.core.persistentvolumeclaim import PersistentVolumeClaimStrategy
from timonel.kinds.core.pod import PodStrategy
from timonel.kinds.core.podtemplate import PodTemplateStrategy
from timonel.kinds.core.replicationcontroller import ReplicationControllerStrategy
from timonel.kinds.core.resourcequota import ResourceQuotaStrategy
from timonel.kinds.core.secret import SecretStrategy
from timonel.kinds.core.service import ServiceStrategy
from timonel.kinds.core.serviceaccount import ServiceAccountStrategy

STRATEGIES: tuple[type[Strategy], ...] = (
    ConfigMapStrategy,
    EndpointsStrategy,
    EventStrategy,
    LimitRangeStrategy,
    NamespaceStrategy,
    NodeStrategy,
    PersistentVolumeClaimStrategy,
    PersistentVolumeStrategy,
    PodStrategy,
    PodTemplateStrategy,
    ReplicationControllerStrategy,
    ResourceQuotaStrategy,
    SecretStrategy,
    ServiceAccountStrategy,
    ServiceStrategy,
)
