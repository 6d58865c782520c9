"""Serving a server's Prometheus metrics on their own port.

Each server keeps its metrics in its own registry (not prometheus-client's
global one), so servers started in one process for tests never collide.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    ProcessCollector,
    disable_created_metrics,
    start_http_server,
)

logger = logging.getLogger(__name__)

ANNOUNCEMENT = "metrics on"


@dataclass
class MetricsServer:
    url: str
    _server: WSGIServer
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def start_metrics(
    listen: str | None, registry: CollectorRegistry, label: str
) -> MetricsServer | None:
    """Serve `registry` at http://listen/metrics (port 0 picks one); None
    when metrics are off. Raises OSError when the address cannot be used.
    Called once per process: it adds the process's collector to `registry`."""
    if listen is None:
        return None
    # Counters' *_created series only double the page; the process's own
    # memory, CPU and file descriptors are worth having beside Beacon's.
    disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped upstream
    ProcessCollector(registry=registry)
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        server, thread = start_http_server(int(port), host, registry)
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {listen}: {exc.strerror}") from exc
    bound_port = server.server_address[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound_port}/metrics"
    # Printed like the listening line, so scripts can find a picked port.
    print(f"{label} {ANNOUNCEMENT} {url}", flush=True)
    logger.info("%s %s %s", label, ANNOUNCEMENT, url)
    return MetricsServer(url, server, thread)
