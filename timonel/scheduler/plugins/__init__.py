"""The in-tree plugins, the registry naming them, and kube-scheduler's default profile."""

from __future__ import annotations

from typing import Final

from timonel.scheduler.framework import PluginSpec, Profile, Registry
from timonel.scheduler.plugins import (
    defaultbinder,
    defaultpreemption,
    imagelocality,
    interpodaffinity,
    nodeaffinity,
    nodename,
    nodeports,
    noderesources,
    nodeunschedulable,
    podtopologyspread,
    tainttoleration,
)

REGISTRY: Final[Registry] = {
    nodeunschedulable.NAME: nodeunschedulable.new,
    nodename.NAME: nodename.new,
    tainttoleration.NAME: tainttoleration.new,
    nodeaffinity.NAME: nodeaffinity.new,
    nodeports.NAME: nodeports.new,
    noderesources.FIT_NAME: noderesources.new_fit,
    noderesources.BALANCED_ALLOCATION_NAME: noderesources.new_balanced_allocation,
    podtopologyspread.NAME: podtopologyspread.new,
    interpodaffinity.NAME: interpodaffinity.new,
    imagelocality.NAME: imagelocality.new,
    defaultpreemption.NAME: defaultpreemption.new,
    defaultbinder.NAME: defaultbinder.new,
}

# The v1.32 default profile: plugins in the order extension points run them, with the
# score weights kube-scheduler gives them. (Volume plugins, queue sort and scheduling
# gates are not plugins here: timonel has no volume binding, and the queue does the rest.)
DEFAULT_PROFILE: Final = Profile(
    plugins=(
        PluginSpec(nodeunschedulable.NAME),
        PluginSpec(nodename.NAME),
        PluginSpec(tainttoleration.NAME, weight=3),
        PluginSpec(nodeaffinity.NAME, weight=2),
        PluginSpec(nodeports.NAME),
        PluginSpec(noderesources.FIT_NAME, weight=1),
        PluginSpec(podtopologyspread.NAME, weight=2),
        PluginSpec(interpodaffinity.NAME, weight=2),
        PluginSpec(defaultpreemption.NAME),
        PluginSpec(noderesources.BALANCED_ALLOCATION_NAME, weight=1),
        PluginSpec(imagelocality.NAME, weight=1),
        PluginSpec(defaultbinder.NAME),
    )
)

__all__ = ["DEFAULT_PROFILE", "REGISTRY"]
