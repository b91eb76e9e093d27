"""Controller references: which controller owns an object, and how a controller claims
the objects its selector matches (kube's ControllerRefManager).

An object has at most one controller (the owner reference with `controller: true`). A
controller adopts orphans its selector matches and releases what it owns but no longer
matches, each through a strategic merge patch that carries the object's uid, so a patch
never lands on a namesake created since. Adoption first re-reads the controller from the
API server: a controller that is being deleted must not adopt.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Protocol

from timonel.api.errors import StatusError
from timonel.api.objects import Object
from timonel.api.selectors import LabelSelector, label_selector_from_object
from timonel.client.resources import Resource
from timonel.client.rest import STRATEGIC_MERGE_PATCH, ApiClient
from timonel.controllers.pods import meta


def controller_of(obj: Object) -> dict[str, Any] | None:
    """metav1.GetControllerOf: the owner reference marked as the controller."""
    for reference in meta(obj).get("ownerReferences") or []:
        if isinstance(reference, dict) and reference.get("controller") is True:
            return reference
    return None


class OwnerLookup(Protocol):
    """Where owners are looked up by `namespace/name` (an informer)."""

    def get(self, key: str) -> Object | None: ...


def cached_controller(obj: Object, kind: str, owners: OwnerLookup) -> Object | None:
    """resolveControllerRef: the `kind` object in `owners` that controls `obj`; None when
    there is none, or when the one of that name is a newer object (another uid)."""
    reference = controller_of(obj)
    if reference is None or reference.get("kind") != kind:
        return None
    owner = owners.get(f"{meta(obj).get('namespace', '')}/{reference.get('name', '')}")
    if owner is None or meta(owner).get("uid") != reference.get("uid"):
        return None
    return owner


def controller_reference(owner: Object, api_version: str, kind: str) -> dict[str, Any]:
    """metav1.NewControllerRef."""
    owner_meta = meta(owner)
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": owner_meta.get("name", ""),
        "uid": owner_meta.get("uid", ""),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def adoption_patch(reference: dict[str, Any], uid: str) -> Object:
    return {"metadata": {"ownerReferences": [reference], "uid": uid}}


def release_patch(owner_uid: str, uid: str) -> Object:
    return {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": uid}}


def selector_of(obj: Object) -> LabelSelector | None:
    """The selector a controller claims with (spec.selector); None when unusable."""
    try:
        return label_selector_from_object((obj.get("spec") or {}).get("selector"))
    except (StatusError, AttributeError, TypeError):
        return None


def namespace_terminating(error: StatusError) -> bool:
    causes = (error.details or {}).get("causes") or []
    return any(isinstance(c, dict) and c.get("type") == "NamespaceTerminating" for c in causes)


class Claim(Enum):
    KEEP = "keep"  # owned and matching
    ADOPT = "adopt"  # an orphan that matches
    RELEASE = "release"  # owned but no longer matching
    IGNORE = "ignore"  # someone else's, or nothing to do


def claim_decision(obj: Object, owner: Object, *, matches: bool) -> Claim:
    """ClaimObject's decision for one object."""
    owner_meta = meta(owner)
    owner_deleting = bool(owner_meta.get("deletionTimestamp"))
    reference = controller_of(obj)
    if reference is not None:
        if reference.get("uid") != owner_meta.get("uid"):
            return Claim.IGNORE
        if matches:
            return Claim.KEEP
        return Claim.IGNORE if owner_deleting else Claim.RELEASE
    if owner_deleting or not matches or meta(obj).get("deletionTimestamp"):
        return Claim.IGNORE
    if owner_meta.get("namespace") and owner_meta.get("namespace") != meta(obj).get("namespace"):
        return Claim.IGNORE
    return Claim.ADOPT


class ControllerRefManager:
    """Claims objects of `resource` for `owner`; `can_adopt` raises when the owner must
    not adopt (it is gone or being deleted), and runs at most once per manager."""

    def __init__(
        self,
        client: ApiClient,
        resource: Resource,
        owner: Object,
        reference: dict[str, Any],
        can_adopt: Callable[[], Awaitable[None]],
    ) -> None:
        self.client = client
        self.resource = resource
        self.owner = owner
        self.reference = reference
        self._can_adopt = can_adopt
        self._adoption_checked = False
        self._adoption_refused: Exception | None = None

    async def claim(self, objects: list[Object], matches: Callable[[Object], bool]) -> list[Object]:
        """The objects the owner ends up owning. Adoption and release failures other
        than the object being gone are raised after every object was tried."""
        claimed: list[Object] = []
        failures: list[Exception] = []
        for obj in objects:
            decision = claim_decision(obj, self.owner, matches=matches(obj))
            try:
                if decision is Claim.KEEP:
                    claimed.append(obj)
                elif decision is Claim.ADOPT:
                    claimed.append(await self._adopt(obj))
                elif decision is Claim.RELEASE:
                    await self._release(obj)
            except StatusError as error:
                if error.code != 404:
                    failures.append(error)
            except Exception as error:  # the adoption precheck
                failures.append(error)
        if failures:
            raise failures[0]
        return claimed

    async def _check_can_adopt(self) -> None:
        if not self._adoption_checked:
            self._adoption_checked = True
            try:
                await self._can_adopt()
            except Exception as error:
                self._adoption_refused = error
        if self._adoption_refused is not None:
            raise self._adoption_refused

    async def _adopt(self, obj: Object) -> Object:
        await self._check_can_adopt()
        obj_meta = meta(obj)
        return await self.client.patch(
            self.resource,
            obj_meta.get("name", ""),
            adoption_patch(self.reference, obj_meta.get("uid", "")),
            obj_meta.get("namespace", ""),
            patch_type=STRATEGIC_MERGE_PATCH,
        )

    async def _release(self, obj: Object) -> None:
        obj_meta = meta(obj)
        try:
            await self.client.patch(
                self.resource,
                obj_meta.get("name", ""),
                release_patch(self.reference["uid"], obj_meta.get("uid", "")),
                obj_meta.get("namespace", ""),
                patch_type=STRATEGIC_MERGE_PATCH,
            )
        except StatusError as error:
            # Invalid: it has no owner reference any more, or its uid changed (deleted
            # and recreated); either way there is nothing left to release.
            if error.code != 422:
                raise


def recheck_owner(
    client: ApiClient, resource: Resource, owner: Object
) -> Callable[[], Awaitable[None]]:
    """RecheckDeletionTimestamp: re-read the owner (uncached) and refuse adoption when it
    was replaced or is being deleted."""

    async def check() -> None:
        owner_meta = meta(owner)
        fresh = await client.get(
            resource, owner_meta.get("name", ""), owner_meta.get("namespace", "")
        )
        fresh_meta = meta(fresh)
        name = f"{owner_meta.get('namespace', '')}/{owner_meta.get('name', '')}"
        if fresh_meta.get("uid") != owner_meta.get("uid"):
            raise RuntimeError(
                f"original {name} is gone: got uid {fresh_meta.get('uid')}, wanted {owner_meta.get('uid')}"
            )
        if fresh_meta.get("deletionTimestamp"):
            raise RuntimeError(f"{name} has just been deleted at {fresh_meta['deletionTimestamp']}")

    return check
