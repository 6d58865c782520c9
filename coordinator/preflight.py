"""A look at every configured agent when the coordinator starts.

Jobs reconnect to agents on their own; this only tells the operator at once,
in the log, about an agent that is down or misconfigured, instead of when a
job's cells fail at its deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

import grpc

from beacon.v1 import region_agent_service_pb2, region_agent_service_pb2_grpc
from coordinator.agent_identity import certificate_problem
from coordinator.region_stream import Replica, refusal_of

logger = logging.getLogger(__name__)

PREFLIGHT_TIMEOUT_SECONDS = 3.0


async def check_agent(region: str, replica: Replica) -> str:
    """ "" when the agent answers as configured, else what is wrong."""
    async with replica.channel(region) as channel:
        stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
        try:
            description = await stub.Describe(
                region_agent_service_pb2.DescribeRequest(),
                timeout=PREFLIGHT_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as exc:
            if replica.tls is not None and exc.code() == grpc.StatusCode.UNAVAILABLE:
                problem = await certificate_problem(
                    replica.address, region, replica.tls
                )
                if problem:
                    return problem
            return f"agent {replica.address} does not answer: {exc.code().name}"
    refusal = refusal_of(region, replica, description)
    if refusal:
        return refusal
    if not description.router_healthy:
        return (
            f"agent {replica.address} reports its router unhealthy: "
            f"{description.router_detail}"
        )
    return ""


async def check_agents(replicas: Mapping[str, Sequence[Replica]]) -> int:
    """Log each agent's state; returns how many have a problem."""
    checks = [
        (region, replica, check_agent(region, replica))
        for region, region_replicas in replicas.items()
        for replica in region_replicas
    ]
    problems = await asyncio.gather(*(check for _, _, check in checks))
    for (region, replica, _), problem in zip(checks, problems, strict=True):
        if problem:
            logger.warning("agent check region=%s: %s", region, problem)
        else:
            logger.info("agent ready region=%s agent=%s", region, replica.address)
    return sum(1 for problem in problems if problem)
