"""A request that does not decode is INVALID_ARGUMENT on every server."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from beacon.bearer import bearer_interceptors
from beacon.v1 import receipt_pb2
from tests.support.servers import start_agent, start_coordinator

NO_ROUTER = "http://127.0.0.1:9"
# A length-delimited field whose length runs past the end, and bad UTF-8.
CORRUPT = [b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x05\x0a\x03\xff\xfe\xfd"]


@pytest.mark.parametrize("data", CORRUPT, ids=["wire-format", "utf-8"])
@pytest.mark.parametrize("method", ["SubmitJob", "RunJob"])
async def test_coordinator_answers_corrupt_requests_invalid_argument(
    tmp_path: Path, method: str, data: bytes
) -> None:
    agent = await start_agent(tmp_path, "us-east", NO_ROUTER)
    coordinator = await start_coordinator(tmp_path, [agent])
    path = f"/beacon.v1.CoordinatorService/{method}"
    try:
        async with grpc.aio.insecure_channel(
            coordinator.address, interceptors=bearer_interceptors(coordinator.token)
        ) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                if method == "RunJob":
                    async for _ in channel.unary_stream(path)(data, timeout=10):
                        pass
                else:
                    await channel.unary_unary(path)(data, timeout=10)
    finally:
        await coordinator.stop()
        await agent.stop()

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in (caught.value.details() or "")


async def test_agent_ends_a_stream_with_a_corrupt_request_invalid_argument(
    tmp_path: Path,
) -> None:
    agent = await start_agent(tmp_path, "us-east", NO_ROUTER)
    good = receipt_pb2.ExecuteRequest(job_id="j", cell_id="c").SerializeToString()
    try:
        async with grpc.aio.insecure_channel(agent.address) as channel:
            call = channel.stream_stream("/beacon.v1.RegionAgentService/Execute")(
                iter([good, CORRUPT[1]]), timeout=10
            )
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                async for _ in call:
                    pass
    finally:
        await agent.stop()

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
