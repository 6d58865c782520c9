"""Real in-process gRPC servers (port 0) for the agent and the coordinator."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from beacon.client import Endpoint, open_channel
from beacon.serving import ServingServer
from beacon.signing import SigningKey
from beacon.tokens import Role, add_token
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc, job_pb2
from coordinator.config import CoordinatorConfig
from coordinator.jobs import JobManager
from coordinator.server import bind_coordinator
from coordinator.service import CoordinatorService
from coordinator.sqlite_store import SqliteJobStore
from region_agent.config import AgentConfig
from region_agent.receipts import DurableReceipts
from region_agent.router_client import RouterClient
from region_agent.server import bind_agent, build_service, router_client_for
from region_agent.service import RegionAgentService


@dataclass
class RunningAgent:
    region: str
    address: str
    key: SigningKey
    servicer: RegionAgentService
    serving: ServingServer
    router: RouterClient

    async def stop(self) -> None:
        await self.serving.stop(0)
        await self.router.aclose()


async def start_agent(
    tmp_path: Path,
    region: str,
    router_url: str,
    *,
    key: SigningKey | None = None,
    capacity: int = 4,
    wrap: Callable[[RegionAgentService], Any] | None = None,
    kept_receipts: DurableReceipts | None = None,
    **settings: Any,
) -> RunningAgent:
    key = key or SigningKey.generate()
    key_path = tmp_path / f"{region}-{key.key_id[-8:]}.key"
    key.write(key_path)
    config = AgentConfig(
        region=region,
        router_url=router_url,
        signing_key=key_path,
        capacity=capacity,
        **settings,
    )
    router = router_client_for(config)
    servicer = build_service(config, key, router, kept_receipts)
    serving = bind_agent(
        config, wrap(servicer) if wrap else servicer, "127.0.0.1:0", kept_receipts
    )
    address = serving.address
    await serving.start()
    return RunningAgent(region, address, key, servicer, serving, router)


@dataclass
class RunningCoordinator:
    address: str
    jobs: JobManager
    store: SqliteJobStore
    serving: ServingServer
    # A token allowed to submit and cancel, and a read-only one.
    token: str
    read_token: str

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.address, self.token)

    async def stop(self) -> None:
        await self.jobs.shutdown()
        await self.serving.stop(0)
        await self.store.close()


async def start_coordinator(
    tmp_path: Path,
    agents: list[RunningAgent],
    *,
    wrap_store: Callable[[SqliteJobStore], Any] | None = None,
    **settings: Any,
) -> RunningCoordinator:
    regions: dict[str, dict[str, list[dict[str, str]]]] = {}
    for agent in agents:
        regions.setdefault(agent.region, {"agents": []})["agents"].append(
            {"address": agent.address, "public_key": agent.key.public.b64}
        )
    tokens_file = tmp_path / "tokens.yaml"
    tokens_file.unlink(missing_ok=True)
    token = add_token(tokens_file, "tester", Role.SUBMIT)
    read_token = add_token(tokens_file, "reader", Role.READ)
    config = CoordinatorConfig.model_validate(
        {
            "store": tmp_path / "coordinator.db",
            "regions": regions,
            "tokens_file": tokens_file,
            **settings,
        }
    )
    store = await SqliteJobStore.open(config.store)
    jobs = JobManager(config, wrap_store(store) if wrap_store else store)
    serving = bind_coordinator(config, "127.0.0.1:0")
    jobs.store_writes.outage.watch(serving.set_available)
    coordinator_service_pb2_grpc.add_CoordinatorServiceServicer_to_server(
        CoordinatorService(jobs), serving.server
    )
    address = serving.address
    await serving.start()
    return RunningCoordinator(address, jobs, store, serving, token, read_token)


async def run_then_stop(
    coordinator: RunningCoordinator, agents: list[RunningAgent], spec: job_pb2.JobSpec
) -> job_pb2.JobResult:
    """RunJob to its end over a real channel, then stop every server."""
    try:
        async with open_channel(coordinator.endpoint) as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            events = [e async for e in stub.RunJob(pb.RunJobRequest(spec=spec))]
    finally:
        await coordinator.stop()
        for agent in agents:
            await agent.stop()
    assert events[-1].HasField("result"), "RunJob must end with the JobResult"
    result: job_pb2.JobResult = events[-1].result
    return result
