"""Beacon's own hybrid router: offline answers or an OpenAI-compatible upstream.

It speaks the hybrid router's HTTP API (`POST /inference`, `GET /health`,
`GET /providers`) and serves each region only from that region's provider.
"""

from local_router.app import create_app
from local_router.config import ConfigError, RouterConfig, UpstreamConfig
from local_router.server import serve

__all__ = ["ConfigError", "RouterConfig", "UpstreamConfig", "create_app", "serve"]
