"""Building ExecuteRequests the way the coordinator does, for agent tests."""

from __future__ import annotations

import time

import grpc

from beacon.cells import cell_id_for
from beacon.digests import sha256_hex
from beacon.timestamps import timestamp
from beacon.v1 import receipt_pb2, region_agent_service_pb2_grpc


def execute_request(
    job_id: str,
    question_id: str,
    prompt: str,
    *,
    region: str = "us-east",
    model: str = "llama3.2-1b",
    attempt: int = 1,
) -> receipt_pb2.ExecuteRequest:
    """A well-formed attempt with 20 s to run."""
    request = receipt_pb2.ExecuteRequest(
        job_id=job_id,
        cell_id=cell_id_for(job_id, region, model, question_id, 0),
        attempt=attempt,
        region=region,
        model=model,
        question_id=question_id,
        prompt=prompt,
        prompt_sha256=sha256_hex(prompt),
        temperature=0.1,
        max_tokens=64,
        router_timeout_seconds=5,
        attempt_seconds=10,
        job_token="test-token",
    )
    request.deadline.CopyFrom(timestamp(time.time() + 20))
    return request


STREAM_SECONDS = 30


async def execute_all(
    address: str, requests: list[receipt_pb2.ExecuteRequest]
) -> list[receipt_pb2.ReceiptBody]:
    """Send the requests on one Execute stream; the bodies of the receipts."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
        call = stub.Execute(iter(requests), timeout=STREAM_SECONDS)
        return [receipt_pb2.ReceiptBody.FromString(r.body) async for r in call]
