"""Strategies of the storage API group."""

from timonel.kinds.base import Strategy
from timonel.kinds.storage.storageclass import StorageClassStrategy

STRATEGIES: tuple[type[Strategy], ...] = (StorageClassStrategy,)
