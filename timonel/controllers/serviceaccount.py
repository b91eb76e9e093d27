"""What every namespace starts with: the `default` ServiceAccount (serviceaccount
controller) and the `kube-root-ca.crt` ConfigMap with the cluster CA (root CA
certificate publisher). Both are recreated when deleted; neither is created in a
namespace that is being deleted."""

from __future__ import annotations

import copy
import logging
from typing import ClassVar

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.client.resources import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS
from timonel.controllers.base import Controller
from timonel.controllers.manager import ControllerContext

log = logging.getLogger(__name__)

DEFAULT_SERVICE_ACCOUNTS = ("default",)
ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
    "endpoints such as the internal service IP or kubernetes.default.svc. "
    "No other usage is guaranteed across distributions of Kubernetes clusters."
)


def _name(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _namespace(obj: Object) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def is_active(namespace: Object) -> bool:
    return str((namespace.get("status") or {}).get("phase", "Active")) == "Active"


def namespace_terminating(error: StatusError) -> bool:
    """The API refused a create because the namespace is being deleted."""
    causes = (error.details or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("reason") == "NamespaceTerminating" for c in causes)


def missing_service_accounts(namespace: Object, existing: set[str]) -> list[str]:
    """The default service accounts an active namespace lacks."""
    if not is_active(namespace):
        return []
    return [name for name in DEFAULT_SERVICE_ACCOUNTS if name not in existing]


def plan_root_ca_configmap(current: Object | None, namespace: str, ca_pem: str) -> Object | None:
    """The ConfigMap to create (no resourceVersion) or update, or None when it is right."""
    data = {"ca.crt": ca_pem}
    if current is None:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": ROOT_CA_CONFIGMAP,
                "namespace": namespace,
                "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION},
            },
            "data": data,
        }
    annotations = (current.get("metadata") or {}).get("annotations") or {}
    if current.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
        return None
    wanted = copy.deepcopy(current)
    wanted["data"] = data
    meta = wanted.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), DESCRIPTION_ANNOTATION: DESCRIPTION}
    return wanted


class ServiceAccountsController(Controller):
    name: ClassVar[str] = "serviceaccount-controller"

    def __init__(self, context: ControllerContext) -> None:
        self.namespaces = context.informers.informer(NAMESPACES)
        self.service_accounts = context.informers.informer(SERVICEACCOUNTS)
        super().__init__([self.namespaces, self.service_accounts])
        self.client = context.client
        self.namespaces.add_handlers(
            on_add=lambda ns: self.queue.add(_name(ns)),
            on_update=lambda _, ns: self.queue.add(_name(ns)),
        )
        self.service_accounts.add_handlers(on_delete=self._on_service_account_deleted)

    def _on_service_account_deleted(self, account: Object) -> None:
        if _name(account) in DEFAULT_SERVICE_ACCOUNTS:
            self.queue.add(_namespace(account))

    async def sync(self, key: str) -> None:
        namespace = self.namespaces.get(key)
        if namespace is None:
            return
        existing = {
            name
            for name in DEFAULT_SERVICE_ACCOUNTS
            if self.service_accounts.get(f"{key}/{name}") is not None
        }
        failures: list[str] = []
        for name in missing_service_accounts(namespace, existing):
            account = {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": key},
            }
            try:
                await self.client.create(SERVICEACCOUNTS, account)
            except StatusError as error:
                if error.code != 409 and not namespace_terminating(error):
                    failures.append(error.message)
        if failures:
            raise RuntimeError("; ".join(failures))


class RootCACertPublisher(Controller):
    name: ClassVar[str] = "root-ca-certificate-publisher-controller"

    def __init__(self, context: ControllerContext) -> None:
        self.namespaces = context.informers.informer(NAMESPACES)
        self.configmaps = context.informers.informer(CONFIGMAPS)
        super().__init__([self.namespaces, self.configmaps])
        self.client = context.client
        pem = context.options.get("ca_cert_pem") or ""
        self.ca_pem = pem.decode() if isinstance(pem, bytes) else str(pem)
        if not self.ca_pem:
            log.warning("%s: no cluster CA given; kube-root-ca.crt is not published", self.name)
        self.namespaces.add_handlers(
            on_add=lambda ns: self.queue.add(_name(ns)), on_update=self._on_namespace_updated
        )
        self.configmaps.add_handlers(
            on_update=lambda _, cm: self._on_configmap(cm), on_delete=self._on_configmap
        )

    def _on_namespace_updated(self, _old: Object, namespace: Object) -> None:
        if is_active(namespace):
            self.queue.add(_name(namespace))

    def _on_configmap(self, configmap: Object) -> None:
        if _name(configmap) == ROOT_CA_CONFIGMAP:
            self.queue.add(_namespace(configmap))

    async def sync(self, key: str) -> None:
        if not self.ca_pem:
            return
        current = self.configmaps.get(f"{key}/{ROOT_CA_CONFIGMAP}")
        wanted = plan_root_ca_configmap(current, key, self.ca_pem)
        if wanted is None:
            return
        if current is not None:
            await self.client.update(CONFIGMAPS, wanted)
            return
        try:
            await self.client.create(CONFIGMAPS, wanted)
        except StatusError as error:
            # Not in a namespace that is gone or going.
            if error.code != 404 and not namespace_terminating(error):
                raise
