"""Asking a server's standard gRPC health service how it is."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def health_of(address: str) -> int:
    """The overall status ("" service) of the plaintext server at `address`."""
    async with grpc.aio.insecure_channel(address) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="")
        )
    return int(reply.status)
