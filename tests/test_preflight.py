"""The coordinator's start-up look at its agents names each problem."""

from __future__ import annotations

from pathlib import Path

from beacon.signing import SigningKey
from chaos.deployment import free_port
from coordinator.preflight import check_agent
from coordinator.region_stream import Replica
from tests.support.router_process import RunningRouter
from tests.support.servers import start_agent


async def test_each_misconfiguration_is_named(
    tmp_path: Path, router: RunningRouter
) -> None:
    agent = await start_agent(tmp_path, "eu-west", router.url)
    try:
        good = await check_agent("eu-west", Replica(agent.address, agent.key.public))
        other_region = await check_agent(
            "us-east", Replica(agent.address, agent.key.public)
        )
        other_key = await check_agent(
            "eu-west", Replica(agent.address, SigningKey.generate().public)
        )
        down = await check_agent(
            "eu-west", Replica(f"127.0.0.1:{free_port()}", agent.key.public)
        )
    finally:
        await agent.stop()

    assert good == ""
    assert "serves 'eu-west', not 'us-east'" in other_region
    assert "is pinned for it" in other_key
    assert "does not answer" in down
