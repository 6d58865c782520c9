"""Serving a server until it is told to stop."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from pathlib import Path

from beacon.serving import serve_until_signalled
from beacon.signing import SigningKey
from region_agent.config import AgentConfig
from region_agent.router_client import HybridRouterClient
from region_agent.server import bind_agent, build_service


async def test_what_starting_made_is_left_out_of_full_collections(
    tmp_path: Path,
) -> None:
    """Once serving, the objects made at start are frozen: a full garbage
    collection no longer walks them (on an agent it stalled the event loop
    for tens of milliseconds)."""
    key_path = tmp_path / "us-east.key"
    SigningKey.generate().write(key_path)
    config = AgentConfig(
        region="us-east", router_url="http://127.0.0.1:9", signing_key=key_path
    )
    router = HybridRouterClient(config.router_url)
    service = build_service(config, SigningKey.load(key_path), router)
    serving = bind_agent(config, service, "127.0.0.1:0")
    ready = tmp_path / "ready"
    gc.unfreeze()
    task = asyncio.create_task(
        serve_until_signalled(serving, label="agent", ready_file=ready, grace=0.1)
    )
    try:
        for _ in range(500):
            if ready.exists():
                break
            await asyncio.sleep(0.01)
        frozen = gc.get_freeze_count()
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 10)
        gc.unfreeze()
        await router.aclose()
    assert frozen > 0
    # Stopped, it no longer announces an address.
    assert not ready.exists()
