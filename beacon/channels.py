"""Settings both ends of a connection must agree on, in one place.

The client's keepalive interval must not be shorter than the server's
minimum allowed ping interval, or the server answers with GOAWAY
("too_many_pings"); message limits must be equal on both ends.
"""

from __future__ import annotations

from typing import Final

MAX_MESSAGE_BYTES: Final = 64 * 1024 * 1024
CLIENT_KEEPALIVE_MS: Final = 20_000
CLIENT_KEEPALIVE_TIMEOUT_MS: Final = 10_000
SERVER_MIN_PING_INTERVAL_MS: Final = 10_000
SERVER_KEEPALIVE_MS: Final = 60_000
SERVER_KEEPALIVE_TIMEOUT_MS: Final = 20_000

# HTTP between an agent and its router: the agent drops an idle connection
# before the router (uvicorn, 5 s by default) closes it, so a request is
# never sent on a connection that is being closed.
ROUTER_IDLE_TIMEOUT_SECONDS: Final = 5
ROUTER_CLIENT_KEEPALIVE_SECONDS: Final = 4.0

ChannelOptions = list[tuple[str, int]]


def client_options() -> ChannelOptions:
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", CLIENT_KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", CLIENT_KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]


def server_options() -> ChannelOptions:
    return [
        # A second server on a port in use must fail, not share it silently.
        ("grpc.so_reuseport", 0),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", SERVER_KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", SERVER_KEEPALIVE_TIMEOUT_MS),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", SERVER_MIN_PING_INTERVAL_MS),
        ("grpc.http2.max_ping_strikes", 2),
    ]
