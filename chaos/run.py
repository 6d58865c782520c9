"""Running a job through a deployment while faults are injected and servers
are killed, then checking that every cell ended exactly once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc

from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc, job_pb2
from chaos.deployment import Deployment
from chaos.plan import ChaosPlan
from chaos.report import ChaosReport, build_report, read_calls

logger = logging.getLogger(__name__)

# A watcher whose coordinator is down tries again this often.
RECONNECT_SECONDS = 0.2
# How long a job is followed before the watcher gives up on it.
WATCH_SECONDS = 600.0


class Kills:
    """The kills still due, each at its share of cells final."""

    def __init__(self, plan: ChaosPlan, deployment: Deployment) -> None:
        self._plan = plan
        self._deployment = deployment
        due: list[tuple[float, str]] = [(at, "agent") for at in plan.agent_kills_at]
        due += [(at, "coordinator") for at in plan.coordinator_kills_at]
        due += [(at, "coordinator-stop") for at in plan.coordinator_stops_at]
        due += [(at, "router") for at in plan.router_restarts_at]
        self._due = sorted(due)
        self.done: list[str] = []
        self._restart: asyncio.Task[None] | None = None

    async def apply(self, progress: float) -> bool:
        """Carry out the kills due at `progress`; True if the coordinator died."""
        coordinator_killed = False
        while self._due and self._due[0][0] <= progress:
            at, target = self._due.pop(0)
            if target == "agent":
                await self._kill_agent(at)
            elif target == "router":
                await asyncio.to_thread(self._deployment.restart_router)
                self.done.append(
                    f"router stopped (SIGTERM) and restarted at {at:.0%} of cells final"
                )
            else:
                if target == "coordinator":
                    self._deployment.kill_coordinator()
                    how = "killed (SIGKILL)"
                else:
                    await asyncio.to_thread(self._deployment.stop_coordinator)
                    how = "stopped (SIGTERM)"
                self.done.append(f"coordinator {how} at {at:.0%} of cells final")
                await asyncio.to_thread(self._deployment.start_coordinator)
                self.done.append("coordinator restarted on the same store")
                coordinator_killed = True
        return coordinator_killed

    async def _kill_agent(self, at: float) -> None:
        agent = self._deployment.agents_of(self._plan.killed_region)[0]
        # An agent still on its way back is killed only once it is up again.
        await self.settle()
        self._deployment.kill_agent(agent)
        self.done.append(f"{agent.name} killed (SIGKILL) at {at:.0%} of cells final")

        async def restart() -> None:
            await asyncio.sleep(self._plan.agent_down_seconds)
            await asyncio.to_thread(self._deployment.start_agent, agent)
            self.done.append(
                f"{agent.name} restarted after {self._plan.agent_down_seconds:g} s"
            )

        self._restart = asyncio.create_task(restart())

    async def settle(self) -> None:
        """Wait for the agent's restart, if one is under way; raises if it failed."""
        if self._restart is not None:
            restart, self._restart = self._restart, None
            await restart


async def watch_to_the_end(
    deployment: Deployment,
    job_id: str,
    *,
    on_progress: Callable[[job_pb2.JobCounts], Awaitable[bool]] | None = None,
    reported_final: dict[str, job_pb2.CellStatus.ValueType] | None = None,
    within_seconds: float = WATCH_SECONDS,
) -> job_pb2.JobResult:
    """Follow the job until its result, across coordinator restarts.

    `on_progress` sees every event's counts and returns True once it has
    restarted the coordinator; `reported_final` gets each cell's announced
    status.
    """
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        try:
            async with deployment.coordinator_channel() as channel:
                stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
                async for event in stub.WatchJob(pb.WatchJobRequest(job_id=job_id)):
                    if event.HasField("cell_finished") and reported_final is not None:
                        finished = event.cell_finished
                        reported_final[finished.cell_id] = finished.status
                    if event.HasField("result"):
                        result: job_pb2.JobResult = event.result
                        return result
                    if on_progress is not None and await on_progress(event.counts):
                        break
                reply = await stub.GetJobResult(pb.GetJobResultRequest(job_id=job_id))
                if reply.result.status not in (
                    job_pb2.JOB_STATUS_PENDING,
                    job_pb2.JOB_STATUS_RUNNING,
                ):
                    final: job_pb2.JobResult = reply.result
                    return final
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.CANCELLED,
            ):
                raise
            logger.info("coordinator unreachable (%s); watching again", exc.code().name)
        await asyncio.sleep(RECONNECT_SECONDS)
    raise TimeoutError(f"job {job_id} did not end in time")


async def run_chaos(plan: ChaosPlan, state_dir: Path) -> ChaosReport:
    deployment = Deployment(
        state_dir,
        plan.regions,
        router_args=plan.router_args(),
        agent_capacity=plan.agent_capacity,
    )
    started = time.monotonic()
    await asyncio.to_thread(deployment.start)
    try:
        job_id = f"chaos-{plan.seed}-{int(time.time())}"
        async with deployment.coordinator_channel() as channel:
            stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
            await stub.SubmitJob(pb.SubmitJobRequest(spec=plan.job(job_id)))
        kills = Kills(plan, deployment)

        async def on_progress(counts: job_pb2.JobCounts) -> bool:
            if not counts.total:
                return False
            return await kills.apply((counts.total - counts.open) / counts.total)

        reported_final: dict[str, job_pb2.CellStatus.ValueType] = {}
        result = await watch_to_the_end(
            deployment,
            job_id,
            on_progress=on_progress,
            reported_final=reported_final,
            within_seconds=plan.job_seconds + 60,
        )
        await kills.settle()
    finally:
        await asyncio.to_thread(deployment.stop)
    report = build_report(result, read_calls(deployment.call_log), reported_final)
    report.events = kills.done
    report.seconds = time.monotonic() - started
    return report
