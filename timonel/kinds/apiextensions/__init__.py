"""Strategies of the apiextensions API group (custom resources themselves are served by
the strategies `custom.custom_resource_strategies` builds from each CRD)."""

from timonel.kinds.apiextensions.customresourcedefinition import CustomResourceDefinitionStrategy
from timonel.kinds.base import Strategy

STRATEGIES: tuple[type[Strategy], ...] = (CustomResourceDefinitionStrategy,)
