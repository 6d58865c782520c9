"""Building and running the coordinator from its configuration."""

from __future__ import annotations

import logging

from beacon.metrics_http import start_metrics
from beacon.serving import ServingServer, serve_until_signalled
from beacon.tls import server_credentials
from beacon.tokens import load_tokens
from beacon.v1 import coordinator_service_pb2_grpc
from coordinator import metrics
from coordinator.auth import TokenAuth
from coordinator.config import CoordinatorConfig
from coordinator.jobs import JobManager
from coordinator.preflight import check_agents
from coordinator.service import CoordinatorService
from coordinator.sqlite_store import SqliteJobStore

logger = logging.getLogger(__name__)

SERVICE_NAME = "beacon.v1.CoordinatorService"


def bind_coordinator(config: CoordinatorConfig, listen: str) -> ServingServer:
    """The coordinator's server, bound, with its tokens and TLS; the
    CoordinatorService is added once the store is open."""
    tokens = load_tokens(config.tokens_file) if config.tokens_file else {}
    serving = ServingServer([SERVICE_NAME], [TokenAuth(tokens)])
    credentials = (
        server_credentials(config.tls, require_client_cert=False)
        if config.tls
        else None
    )
    serving.bind(listen, credentials)
    return serving


async def run_coordinator(config: CoordinatorConfig) -> None:
    # Bound first: a coordinator that cannot listen must not touch the store.
    serving = bind_coordinator(config, config.listen)
    exporter = start_metrics(
        config.metrics_listen, metrics.REGISTRY, "beacon-coordinator"
    )
    store = await SqliteJobStore.open(config.store)
    jobs = JobManager(config, store)
    # NOT_SERVING while the store takes no writes: no job can make progress.
    jobs.store_writes.outage.watch(serving.set_available)
    coordinator_service_pb2_grpc.add_CoordinatorServiceServicer_to_server(
        CoordinatorService(jobs), serving.server
    )
    await check_agents(jobs.replicas)
    resumed = await jobs.resume_unfinished()
    if resumed:
        logger.info("resumed unfinished jobs: %s", ", ".join(resumed))

    try:
        await serve_until_signalled(
            serving,
            label="beacon-coordinator",
            ready_file=config.ready_file,
            drain=jobs.shutdown,
        )
    finally:
        await store.close()
        if exporter is not None:
            exporter.stop()
