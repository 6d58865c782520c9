"""Contracts between parts: settings both ends share, and the RPC surface."""

from __future__ import annotations

import pytest

from beacon import channels, timeouts
from beacon.v1 import coordinator_service_pb2, region_agent_service_pb2
from coordinator.service import CoordinatorService
from local_router.config import RouterConfig, UpstreamConfig
from region_agent.service import RegionAgentService


def test_client_pings_no_faster_than_servers_allow() -> None:
    """A client pinging faster than the server permits is cut off (too_many_pings)."""
    assert channels.CLIENT_KEEPALIVE_MS >= channels.SERVER_MIN_PING_INTERVAL_MS
    assert channels.CLIENT_KEEPALIVE_TIMEOUT_MS < channels.CLIENT_KEEPALIVE_MS


def test_agent_drops_idle_router_connections_first() -> None:
    """The router must never close a connection the agent is about to reuse."""
    assert (
        channels.ROUTER_CLIENT_KEEPALIVE_SECONDS < channels.ROUTER_IDLE_TIMEOUT_SECONDS
    )
    assert RouterConfig().keep_alive_seconds == channels.ROUTER_IDLE_TIMEOUT_SECONDS


def test_timeouts_nest_from_upstream_to_job() -> None:
    """Upstream < router call < cell attempt < job, with room for a 150 s cold start."""
    assert (
        150 < timeouts.DEFAULT_UPSTREAM_SECONDS < timeouts.DEFAULT_ROUTER_CALL_SECONDS
    )
    assert UpstreamConfig(url="http://127.0.0.1:1").timeout_seconds == (
        timeouts.DEFAULT_UPSTREAM_SECONDS
    )
    assert timeouts.TimeoutHierarchy().is_ordered()


def test_message_limits_are_the_same_on_both_ends() -> None:
    client = dict(channels.client_options())
    server = dict(channels.server_options())

    for name in ("grpc.max_send_message_length", "grpc.max_receive_message_length"):
        assert client[name] == server[name] == channels.MAX_MESSAGE_BYTES


@pytest.mark.parametrize(
    ("descriptor", "servicer"),
    [
        (
            coordinator_service_pb2.DESCRIPTOR.services_by_name["CoordinatorService"],
            CoordinatorService,
        ),
        (
            region_agent_service_pb2.DESCRIPTOR.services_by_name["RegionAgentService"],
            RegionAgentService,
        ),
    ],
    ids=["coordinator", "region-agent"],
)
def test_every_rpc_in_the_protos_is_implemented(
    descriptor: object, servicer: type
) -> None:
    """Each method the proto declares is overridden by the servicer."""
    for method in descriptor.methods:  # type: ignore[attr-defined]
        implementation = getattr(servicer, method.name)
        base = getattr(servicer.__mro__[1], method.name)
        assert implementation is not base, f"{servicer.__name__}.{method.name} missing"
