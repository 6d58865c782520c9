"""Shared fixtures: a real local router process for tests that need one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.router_process import RunningRouter, start_router


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRouter]:
    """The project's router with its offline provider, recording every call."""
    with start_router(tmp_path_factory.mktemp("router")) as running:
        yield running
