"""A deployment whose servers can be killed and brought back at the same address.

The router injects faults at the rates given; every agent and the coordinator
listen on fixed loopback ports, so a restarted process is found where the
coordinator's configuration (or a client) expects it. The coordinator's
store and the agents' keys live under one state folder and survive restarts.
"""

from __future__ import annotations

import logging
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import yaml

from beacon.client import Endpoint, open_channel
from beacon.local import agent_command, ensure_region_key, write_run_token
from beacon.processes import ManagedProcess, ProcessGroup

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A port nothing listens on now; the server binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class AgentSlot:
    """One agent replica: where it listens and the process serving there."""

    name: str
    region: str
    address: str
    key_path: Path
    public_key: str
    capacity: int
    process: ManagedProcess | None = None


@dataclass
class Deployment:
    """Router, agents (`replicas` per region) and coordinator as processes."""

    state_dir: Path
    regions: tuple[str, ...]
    replicas: dict[str, int] = field(default_factory=dict)
    router_args: tuple[str, ...] = ()
    agent_capacity: int = 16
    coordinator_settings: dict[str, object] = field(default_factory=dict)
    group: ProcessGroup = field(init=False)
    router_url: str = field(init=False, default="")
    call_log: Path = field(init=False)
    coordinator_address: str = field(init=False, default="")
    # A submit token for the coordinator, made afresh for the deployment.
    token: str = field(init=False, default="")
    agents: list[AgentSlot] = field(init=False, default_factory=list)
    _coordinator: ManagedProcess | None = field(init=False, default=None)
    _router: ManagedProcess | None = field(init=False, default=None)
    _router_port: int = field(init=False, default=0)
    _config_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.group = ProcessGroup(self.state_dir / "run")
        self.call_log = self.state_dir / "router-calls.jsonl"
        self._config_path = self.state_dir / "coordinator.yaml"

    def start(self) -> None:
        self._router_port = free_port()
        self.start_router()
        for region in self.regions:
            key_path, public_key = ensure_region_key(self.state_dir / "keys", region)
            for index in range(self.replicas.get(region, 1)):
                self.agents.append(
                    AgentSlot(
                        name=f"agent-{region}-{index}",
                        region=region,
                        address=f"127.0.0.1:{free_port()}",
                        key_path=key_path,
                        public_key=public_key,
                        capacity=self.agent_capacity,
                    )
                )
        for agent in self.agents:
            self.start_agent(agent, wait=False)
        for agent in self.agents:
            assert agent.process is not None
            agent.process.wait_ready()
        self.coordinator_address = f"127.0.0.1:{free_port()}"
        self._write_coordinator_config()
        self.start_coordinator()

    def coordinator_channel(self) -> grpc.aio.Channel:
        """A channel to the coordinator that sends the deployment's token."""
        return open_channel(Endpoint(self.coordinator_address, self.token))

    def start_router(self) -> None:
        self._router = self.group.start(
            "router",
            [
                "local_router",
                "--port",
                str(self._router_port),
                "--call-log",
                str(self.call_log),
                *self.router_args,
            ],
        )
        self.router_url = self._router.wait_ready()

    def restart_router(self) -> None:
        """SIGTERM (calls in flight finish), then start it on the same port;
        its memory of replies by idempotency key is lost."""
        if self._router is not None:
            self._router.stop()
        self.start_router()

    def agents_of(self, region: str) -> list[AgentSlot]:
        return [agent for agent in self.agents if agent.region == region]

    def start_agent(self, agent: AgentSlot, *, wait: bool = True) -> None:
        agent.process = self.group.start(
            agent.name,
            agent_command(
                agent.region,
                self.router_url,
                agent.key_path,
                "--capacity",
                str(agent.capacity),
                # Kept across restarts, like the agent's key.
                "--receipts-file",
                str(self.state_dir / "receipts" / f"{agent.name}.db"),
                listen=agent.address,
            ),
        )
        if wait:
            agent.process.wait_ready()

    def kill_agent(self, agent: AgentSlot) -> None:
        """SIGKILL: no drain, no goodbye, receipts in memory lost."""
        if agent.process is not None:
            _kill(agent.process)
            agent.process = None
        logger.info("killed %s", agent.name)

    def start_coordinator(self) -> None:
        self._coordinator = self.group.start(
            "coordinator", ["beacon", "coordinator", "--config", str(self._config_path)]
        )
        self._coordinator.wait_ready()

    def stop_coordinator(self) -> int:
        """SIGTERM, as an operator stops it; returns its exit code."""
        assert self._coordinator is not None
        code = self._coordinator.stop()
        self._coordinator = None
        return code

    def signal_coordinator(self, sig: signal.Signals) -> None:
        assert self._coordinator is not None
        self._coordinator.signal(sig)

    def kill_coordinator(self) -> None:
        if self._coordinator is not None:
            _kill(self._coordinator)
            self._coordinator = None
        logger.info("killed the coordinator")

    def stop(self) -> None:
        self.group.stop_all()

    def _write_coordinator_config(self) -> None:
        regions: dict[str, dict[str, list[dict[str, str]]]] = {}
        for agent in self.agents:
            regions.setdefault(agent.region, {"agents": []})["agents"].append(
                {"address": agent.address, "public_key": agent.public_key}
            )
        tokens_file = self.state_dir / "tokens.yaml"
        self.token = write_run_token(tokens_file)
        config = {
            "listen": self.coordinator_address,
            "store": str(self.state_dir / "beacon.db"),
            "tokens_file": str(tokens_file.resolve()),
            "regions": regions,
            **self.coordinator_settings,
        }
        self._config_path.write_text(
            yaml.safe_dump(config, sort_keys=False), encoding="utf-8"
        )


def _kill(managed: ManagedProcess) -> None:
    managed.signal(signal.SIGKILL)
    managed.process.wait()
