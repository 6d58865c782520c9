"""Running a scenario's job through a whole Beacon deployment.

The job goes in with RunJob, whose stream reports each cell once its
outcome is stored; the run ends when the last cell is final. Peak memory of
the coordinator and of one agent is read at that moment, before anything
assembles a result.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from beacon.processes import ManagedProcess
from beacon.timestamps import seconds as seconds_of
from beacon.v1 import coordinator_service_pb2 as pb
from beacon.v1 import coordinator_service_pb2_grpc, job_pb2, receipt_pb2
from bench.cpu import CpuSnapshot, CpuUse
from bench.memory import peak_rss_mib
from bench.plan import Scenario
from chaos.deployment import Deployment

logger = logging.getLogger(__name__)


@dataclass
class BeaconRun:
    # From the RunJob call to the event reporting the last cell final.
    seconds: float = 0.0
    completed: int = 0
    final: int = 0
    # When the bench read each cell's "finished" event, by this host's clock.
    reported_at: dict[str, float] = field(default_factory=dict)
    # From the JobResult, when it was fetched: when the agent finished each
    # cell (its receipt's finished_at, stamped after reading the router's
    # reply, before signing) and when the coordinator accepted that receipt.
    agent_done_at: dict[str, float] = field(default_factory=dict)
    accepted_at: dict[str, float] = field(default_factory=dict)
    coordinator_peak_mib: float = 0.0
    agent_peak_mib: float = 0.0
    # The coordinator's peak once it has also assembled the JobResult.
    coordinator_peak_with_result_mib: float | None = None
    # CPU of every process when the last cell was final, and what the run
    # used from its start to then.
    cpu_at_end: CpuSnapshot = field(default_factory=lambda: CpuSnapshot({}))
    cpu: CpuUse | None = None


async def run_job(
    deployment: Deployment, scenario: Scenario, job_id: str, *, fetch_result: bool
) -> BeaconRun:
    run = BeaconRun()
    coordinator = _process(deployment, "coordinator")
    agent = deployment.agents[0].process
    assert agent is not None
    async with deployment.coordinator_channel() as channel:
        stub = coordinator_service_pb2_grpc.CoordinatorServiceStub(channel)
        started = time.perf_counter()
        call = stub.RunJob(pb.RunJobRequest(spec=scenario.job(job_id)))
        async for event in call:
            if event.HasField("cell_finished"):
                run.reported_at[event.cell_finished.cell_id] = time.time()
            counts = event.counts
            if counts.total and counts.open == 0:
                run.seconds = time.perf_counter() - started
                run.completed = counts.completed
                run.final = counts.total - counts.open
                break
        else:
            raise RuntimeError(
                f"job {job_id}: RunJob ended before every cell was final"
            )
        run.cpu_at_end = CpuSnapshot.take(deployment.group.processes)
        call.cancel()
        run.coordinator_peak_mib = peak_rss_mib(coordinator.process.pid)
        run.agent_peak_mib = peak_rss_mib(agent.process.pid)
        if fetch_result:
            reply = await stub.GetJobResult(pb.GetJobResultRequest(job_id=job_id))
            _read_times(reply.result, run)
            run.coordinator_peak_with_result_mib = peak_rss_mib(coordinator.process.pid)
    return run


def _read_times(result: job_pb2.JobResult, run: BeaconRun) -> None:
    for outcome in result.outcomes:
        if outcome.status != job_pb2.CELL_STATUS_COMPLETED or not outcome.attempts:
            continue
        body = receipt_pb2.ReceiptBody.FromString(outcome.receipt.body)
        run.agent_done_at[outcome.cell_id] = seconds_of(body.finished_at)
        run.accepted_at[outcome.cell_id] = seconds_of(outcome.attempts[-1].finished_at)


def _process(deployment: Deployment, name: str) -> ManagedProcess:
    for managed in deployment.group.processes:
        if managed.name == name:
            return managed
    raise LookupError(f"the deployment runs no process named {name!r}")
