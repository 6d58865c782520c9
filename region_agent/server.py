"""Building and running a region agent from its configuration."""

from __future__ import annotations

import logging

from beacon.metrics_http import start_metrics
from beacon.serving import DEFAULT_GRACE_SECONDS, ServingServer, serve_until_signalled
from beacon.signing import SigningKey
from beacon.tls import CoordinatorOnly, server_credentials
from beacon.v1 import region_agent_service_pb2_grpc
from region_agent import metrics
from region_agent.config import AgentConfig
from region_agent.executor import CellExecutor, ExecutorSettings
from region_agent.openai_client import OpenAIChatClient
from region_agent.receipt_store import ReceiptStore
from region_agent.receipts import DurableReceipts
from region_agent.router_client import HybridRouterClient, RouterClient
from region_agent.service import RegionAgentService

logger = logging.getLogger(__name__)

SERVICE_NAME = "beacon.v1.RegionAgentService"


def build_service(
    config: AgentConfig,
    key: SigningKey,
    router: RouterClient,
    kept_receipts: DurableReceipts | None = None,
) -> RegionAgentService:
    agent_id = config.agent_id_for(key.key_id)
    settings = ExecutorSettings(
        region=config.region,
        agent_id=agent_id,
        max_router_timeout_seconds=config.max_router_timeout_seconds,
        max_output_chars=config.max_output_chars,
    )
    return RegionAgentService(
        region=config.region,
        agent_id=agent_id,
        key=key,
        capacity=config.capacity,
        executor=CellExecutor(settings, router),
        router=router,
        receipt_cache_size=config.receipt_cache_size,
        receipt_cache_bytes=config.receipt_cache_bytes,
        kept_receipts=kept_receipts,
    )


def bind_agent(
    config: AgentConfig,
    service: region_agent_service_pb2_grpc.RegionAgentServiceServicer,
    listen: str,
    kept_receipts: DurableReceipts | None = None,
) -> ServingServer:
    """The agent's server, bound: mutual TLS (only the coordinator may call)
    when the configuration has certificates, plaintext otherwise. Its health
    is NOT_SERVING while `kept_receipts` cannot be written."""
    serving = ServingServer([SERVICE_NAME], [CoordinatorOnly()] if config.tls else [])
    if kept_receipts is not None:
        kept_receipts.outage.watch(serving.set_available)
    region_agent_service_pb2_grpc.add_RegionAgentServiceServicer_to_server(
        service, serving.server
    )
    credentials = (
        server_credentials(config.tls, require_client_cert=True) if config.tls else None
    )
    serving.bind(listen, credentials)
    return serving


def router_client_for(config: AgentConfig) -> RouterClient:
    """The client for the API at the configured URL."""
    if config.router_kind == "openai":
        return OpenAIChatClient(
            config.router_url,
            model_map=config.model_map,
            api_key=config.api_key(),
            max_connections=config.capacity,
        )
    return HybridRouterClient(config.router_url, max_connections=config.capacity)


async def run_agent(config: AgentConfig) -> None:
    key = SigningKey.load(config.signing_key)
    router = router_client_for(config)
    kept = None
    if config.receipts_file is not None:
        kept = await ReceiptStore.open(
            config.receipts_file, config.receipt_retention_hours * 3600
        )
    service = build_service(config, key, router, kept)
    serving = bind_agent(config, service, config.listen, kept)
    label = f"beacon-agent[{config.region}]"
    exporter = start_metrics(config.metrics_listen, metrics.REGISTRY, label)
    logger.info(
        "agent region=%s agent_id=%s key_id=%s router=%s capacity=%d",
        config.region,
        config.agent_id_for(key.key_id),
        key.key_id,
        config.router_url,
        config.capacity,
    )

    async def drain() -> None:
        # Cells in flight finish while the server still answers health
        # checks (NOT_SERVING by now) and refuses new streams.
        await service.drain()
        await service.finish_executions(DEFAULT_GRACE_SECONDS)
        # One grace period in all: what is still running now is given up, so
        # the streams end and the process exits within it.
        abandoned = service.abandon_running()
        if abandoned:
            logger.warning(
                "gave up %d cells still running after %.0fs; the coordinator "
                "sends them again",
                abandoned,
                DEFAULT_GRACE_SECONDS,
            )

    async def close() -> None:
        await service.finish_executions(DEFAULT_GRACE_SECONDS)
        await router.aclose()
        if exporter is not None:
            exporter.stop()
        if kept is not None:
            await kept.close()

    await serve_until_signalled(
        serving,
        label=label,
        ready_file=config.ready_file,
        drain=drain,
        cleanup=close,
    )
