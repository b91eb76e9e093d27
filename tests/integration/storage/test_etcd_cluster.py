"""What the etcd store owes beyond the conformance suite: several servers on one etcd,
endpoint failover, watches that outlive an etcd restart, and replays from far back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.storage.conftest import ModuleServers
from tests.integration.storage.etcd_process import ETCD, MISSING_REASON, EtcdProcess, EtcdTLS
from tests.integration.storage.test_storage_conformance import collect, follow, until_seen
from timonel import pki
from timonel.storage.etcd import EtcdError, EtcdStorage
from timonel.storage.interface import EventType, RevisionMismatch, WatchEvent

pytestmark = pytest.mark.skipif(not ETCD.exists(), reason=MISSING_REASON)


@pytest.fixture
def etcd(servers: ModuleServers) -> EtcdProcess:
    server = servers.etcd()
    server.wipe()
    return server


@pytest.fixture
async def opened() -> AsyncIterator[list[EtcdStorage]]:
    stores: list[EtcdStorage] = []
    yield stores
    for store in stores:
        await store.close()


async def open_store(opened: list[EtcdStorage], endpoint: str, **options: int) -> EtcdStorage:
    store = EtcdStorage(endpoint, compact_interval=0, **options)
    await store.start()
    opened.append(store)
    return store


async def test_two_servers_share_one_etcd(etcd: EtcdProcess, opened: list[EtcdStorage]) -> None:
    first = await open_store(opened, etcd.endpoint)
    second = await open_store(opened, etcd.endpoint)
    start = await second.current_revision()
    watch = second.watch("/r/", after=start, progress_notify=True)
    created = await first.create("/r/a", b"1")
    elsewhere = await first.create("/other/a", b"1")

    event = await asyncio.wait_for(anext(watch), 5)
    assert (event.type, event.kv) == (EventType.PUT, created)
    # The second server learns that its prefix is complete up to the first one's writes.
    async with asyncio.timeout(5):
        notice = await anext(watch)
        while notice.revision < elsewhere.mod_revision:
            notice = await anext(watch)
    assert notice.type is EventType.PROGRESS

    updated = await second.update("/r/a", b"2", expected_revision=created.mod_revision)
    with pytest.raises(RevisionMismatch):
        await first.update("/r/a", b"3", expected_revision=created.mod_revision)
    assert await first.get("/r/a") == updated

    # A compaction by one server is seen by the other.
    for step in range(5):
        updated = await first.update("/r/a", b"%d" % step, expected_revision=updated.mod_revision)
    await first.compact(updated.mod_revision - 2)
    assert await second.compacted_revision() == updated.mod_revision - 2


async def test_an_unreachable_endpoint_is_skipped(
    etcd: EtcdProcess, opened: list[EtcdStorage]
) -> None:
    store = await open_store(opened, f"etcd://127.0.0.1:1,127.0.0.1:{etcd.client_port}")
    kv = await store.create("/r/a", b"1")
    assert await store.get("/r/a") == kv
    events = await collect(store.watch("/r/", after=kv.mod_revision - 1), kv.mod_revision)
    assert [e.kv for e in events] == [kv]


async def test_a_watch_far_behind_replays_from_etcd(
    etcd: EtcdProcess, opened: list[EtcdStorage]
) -> None:
    store = await open_store(opened, etcd.endpoint, history_events=5)
    start = await store.current_revision()
    written = []
    for index in range(40):
        written.append(await store.create(f"/r/{index:02d}", b"v"))
        await store.create(f"/other/{index:02d}", b"v")
    events = await collect(store.watch("/r/", after=start), written[-1].mod_revision)
    assert [e.kv for e in events] == written
    # And it goes on with live writes, none twice.
    watch = store.watch("/r/", after=written[-1].mod_revision - 1)
    assert (await anext(watch)).kv == written[-1]
    live = await store.create("/r/live", b"v")
    assert (await asyncio.wait_for(anext(watch), 5)).kv == live


async def test_watches_carry_on_across_an_etcd_restart(
    etcd: EtcdProcess, opened: list[EtcdStorage]
) -> None:
    store = await open_store(opened, etcd.endpoint)
    start = await store.current_revision()
    events: list[WatchEvent] = []
    follower = asyncio.create_task(follow(store.watch("/r/", after=start), events))
    try:
        before = await store.create("/r/before", b"v")
        await until_seen(events, before.mod_revision)
        await asyncio.to_thread(etcd.stop)
        await asyncio.to_thread(etcd.start)
        after = await store.create("/r/after", b"v")
        await until_seen(events, after.mod_revision, timeout=15)
    finally:
        follower.cancel()
    assert [e.kv for e in events] == [before, after]


def etcd_serving_cert(issued: pki.ClusterPKI, directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 good for serving and as a client: etcd's gateway
    connects to etcd's own gRPC port with it when client certificates are required."""
    from datetime import UTC, datetime, timedelta
    from ipaddress import IPv4Address

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(issued.ca_cert_pem)
    ca_key = serialization.load_pem_private_key(issued.ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "etcd.crt", directory / "etcd.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_with_a_client_certificate(tmp_path: Path, opened: list[EtcdStorage]) -> None:
    issued = pki.ensure_cluster_pki(tmp_path, hosts=["127.0.0.1"], service_ip="10.43.0.1")
    server_cert, server_key = etcd_serving_cert(issued, tmp_path)
    tls = EtcdTLS(
        issued.ca_cert_path, server_cert, server_key, issued.admin_cert_path, issued.admin_key_path
    )
    etcd = EtcdProcess(tmp_path, tls)
    await asyncio.to_thread(etcd.start)
    try:
        store = await open_store(opened, etcd.endpoint)
        start = await store.current_revision()
        kv = await store.create("/r/a", b"1")
        assert await store.get("/r/a") == kv
        events = await collect(store.watch("/r/", after=start), kv.mod_revision)
        assert [e.kv for e in events] == [kv]
        # Without a client certificate etcd refuses the connection.
        anonymous = EtcdStorage(
            f"etcds://127.0.0.1:{etcd.client_port}?cacert={tls.ca_file}", request_timeout=5
        )
        with pytest.raises(EtcdError):
            await anonymous.start()
    finally:
        await asyncio.to_thread(etcd.remove)
