"""Process-wide settings of the standalone agent."""

from __future__ import annotations

import asyncio
import gc
import os
import ssl

import pytest

from timonel.agent.kubelet.process import settle_after_start, without_system_ca_bundle


def test_no_ca_bundle_inside_and_the_environment_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/custom.pem")
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with without_system_ca_bundle():
        assert ssl.create_default_context().cert_store_stats()["x509_ca"] == 0
    assert os.environ["SSL_CERT_FILE"] == "/etc/custom.pem"
    assert "SSL_CERT_DIR" not in os.environ


async def test_settles_only_once_started() -> None:
    started = asyncio.Event()
    settling = asyncio.create_task(settle_after_start(started, delay=0))
    await asyncio.sleep(0.01)
    assert not settling.done()
    started.set()
    try:
        await asyncio.wait_for(settling, 5)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
