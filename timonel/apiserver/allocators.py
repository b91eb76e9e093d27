"""ClusterIP and NodePort allocation, reserved in storage so that every API server of a
cluster agrees: an address is taken by creating its key, and a lost race is a KeyExists."""

from __future__ import annotations

import contextlib
import ipaddress
import random

from timonel.storage.interface import KeyExists, KeyNotFound, Storage

SERVICE_IP_PREFIX = "/registry/ranges/serviceips/"
NODE_PORT_PREFIX = "/registry/ranges/servicenodeports/"
NODE_PORT_RANGE = range(30000, 32768)


class RangeFull(Exception):
    pass


class AlreadyAllocated(Exception):
    pass


class OutOfRange(Exception):
    pass


class ServiceIPAllocator:
    def __init__(self, storage: Storage, cidr: str) -> None:
        self.storage = storage
        self.network = ipaddress.ip_network(cidr, strict=False)
        # The network address and (IPv4) broadcast address are never handed out.
        self._first = int(self.network.network_address) + 1
        self._last = int(self.network.broadcast_address) - (1 if self.network.version == 4 else 0)

    @property
    def size(self) -> int:
        return self._last - self._first + 1

    def first_address(self) -> str:
        return str(ipaddress.ip_address(self._first))

    async def allocate(self, requested: str = "") -> str:
        if requested:
            wanted = ipaddress.ip_address(requested)
            if wanted not in self.network or not self._first <= int(wanted) <= self._last:
                raise OutOfRange(requested)
            try:
                await self.storage.create(SERVICE_IP_PREFIX + str(wanted), b"")
            except KeyExists:
                raise AlreadyAllocated(requested) from None
            return str(wanted)
        # Random start then a linear probe: cheap while the range is sparse, complete
        # when it is nearly full. The first 16 addresses are kept for well-known
        # services (the API at .1, DNS at .10), as kube-apiserver's dynamic range does.
        reserved = min(16, self.size // 2)
        span = self.size - reserved
        start = random.randrange(span)
        for offset in range(span):
            address = str(ipaddress.ip_address(self._first + reserved + (start + offset) % span))
            try:
                await self.storage.create(SERVICE_IP_PREFIX + address, b"")
            except KeyExists:
                continue
            return address
        raise RangeFull(str(self.network))

    async def release(self, address: str) -> None:
        with contextlib.suppress(KeyNotFound):  # already free: releasing is idempotent
            await self.storage.delete(SERVICE_IP_PREFIX + address)


class NodePortAllocator:
    def __init__(self, storage: Storage, ports: range = NODE_PORT_RANGE) -> None:
        self.storage = storage
        self.ports = ports

    async def allocate(self, requested: int = 0) -> int:
        if requested:
            if requested not in self.ports:
                raise OutOfRange(str(requested))
            try:
                await self.storage.create(f"{NODE_PORT_PREFIX}{requested}", b"")
            except KeyExists:
                raise AlreadyAllocated(str(requested)) from None
            return requested
        start = random.randrange(len(self.ports))
        for offset in range(len(self.ports)):
            port = self.ports[(start + offset) % len(self.ports)]
            try:
                await self.storage.create(f"{NODE_PORT_PREFIX}{port}", b"")
            except KeyExists:
                continue
            return port
        raise RangeFull(f"{self.ports.start}-{self.ports.stop - 1}")

    async def release(self, port: int) -> None:
        with contextlib.suppress(KeyNotFound):  # already free: releasing is idempotent
            await self.storage.delete(f"{NODE_PORT_PREFIX}{port}")
