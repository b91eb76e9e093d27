"""The controllers `timonel server` runs, by name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from timonel.controllers.cronjob import CronJobController
from timonel.controllers.daemonset import DaemonSetController
from timonel.controllers.deployment import DeploymentController
from timonel.controllers.disruption import DisruptionController
from timonel.controllers.endpoints import EndpointsController
from timonel.controllers.endpointslice import EndpointSliceController
from timonel.controllers.garbagecollector import GarbageCollector
from timonel.controllers.horizontalpodautoscaler import HorizontalPodAutoscalerController
from timonel.controllers.job import JobController
from timonel.controllers.namespace import NamespaceController
from timonel.controllers.nodedns import NodeDnsEndpointsController
from timonel.controllers.nodeipam import NodeIpamController
from timonel.controllers.nodelifecycle import NodeLifecycleController
from timonel.controllers.replicaset import ReplicaSetController
from timonel.controllers.resourcequota import ResourceQuotaController
from timonel.controllers.serviceaccount import RootCACertPublisher, ServiceAccountsController
from timonel.controllers.servicelb import ServiceLBController
from timonel.controllers.statefulset import StatefulSetController
from timonel.controllers.tainteviction import TaintEvictionController
from timonel.controllers.ttlafterfinished import TTLAfterFinishedController

if TYPE_CHECKING:
    from timonel.controllers.manager import ControllerFactory

CONTROLLERS: dict[str, ControllerFactory] = {
    GarbageCollector.name: GarbageCollector,
    NamespaceController.name: NamespaceController,
    ServiceAccountsController.name: ServiceAccountsController,
    RootCACertPublisher.name: RootCACertPublisher,
    DeploymentController.name: DeploymentController,
    ReplicaSetController.name: ReplicaSetController,
    DaemonSetController.name: DaemonSetController,
    StatefulSetController.name: StatefulSetController,
    JobController.name: JobController,
    TTLAfterFinishedController.name: TTLAfterFinishedController,
    CronJobController.name: CronJobController,
    EndpointsController.name: EndpointsController,
    EndpointSliceController.name: EndpointSliceController,
    NodeIpamController.name: NodeIpamController,
    NodeLifecycleController.name: NodeLifecycleController,
    TaintEvictionController.name: TaintEvictionController,
    DisruptionController.name: DisruptionController,
    ResourceQuotaController.name: ResourceQuotaController,
    ServiceLBController.name: ServiceLBController,
    NodeDnsEndpointsController.name: NodeDnsEndpointsController,
    HorizontalPodAutoscalerController.name: HorizontalPodAutoscalerController,
}
