"""ImageLocality: prefer nodes that already have the pod's images, weighted by image size
and by how widely the image is spread (an image on every node favours none)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from timonel.scheduler.framework import (
    MAX_NODE_SCORE,
    SKIP,
    SUCCESS,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    Status,
)

NAME: Final = "ImageLocality"

_MB: Final = 1024 * 1024
MIN_THRESHOLD: Final = 23 * _MB
MAX_CONTAINER_THRESHOLD: Final = 1000 * _MB


def image_priority(sum_scores: int, container_count: int) -> int:
    """calculatePriority: the summed image scores clamped to [23MB, 1000MB * containers]
    and scaled to 0..100."""
    max_threshold = MAX_CONTAINER_THRESHOLD * container_count
    clamped = min(max(sum_scores, MIN_THRESHOLD), max_threshold)
    if max_threshold <= MIN_THRESHOLD:
        return 0
    return MAX_NODE_SCORE * (clamped - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)


class ImageLocality:
    name = NAME

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> Status:
        """SKIP when no node has any of the pod's images: every node would score 0."""
        snapshot = state.snapshot
        if any(snapshot.image_num_nodes(image) for image in pod.images):
            return SUCCESS
        return SKIP

    def score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        snapshot = state.snapshot
        total_nodes = len(snapshot.nodes)
        scores = [0] * len(nodes)
        holders: set[str] = set()
        for image in pod.images:
            holders.update(snapshot.image_holders(image))
        if not holders or not total_nodes:
            return scores
        spreads = {image: snapshot.image_num_nodes(image) / total_nodes for image in pod.images}
        for index, node in enumerate(nodes):
            if node.name not in holders:
                continue
            present = node.images
            summed = 0
            for image, spread in spreads.items():
                size = present.get(image)
                if size is not None:
                    summed += int(float(size) * spread)
            scores[index] = image_priority(summed, pod.container_count)
        return scores


def new(args: Mapping[str, Any], handle: Handle) -> ImageLocality:
    return ImageLocality()
