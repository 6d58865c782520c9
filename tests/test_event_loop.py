"""Which event loop Beacon's processes run on."""

from __future__ import annotations

import asyncio
import inspect
import warnings
from pathlib import Path

import pytest

from beacon import cli, event_loop
from beacon.settings import ConfigError


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.CHOICE_VARIABLE, raising=False)
    assert event_loop.name() == "uvloop"
    assert event_loop.run(_loop_module()).startswith("uvloop")


def test_the_standard_loop_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.CHOICE_VARIABLE, "asyncio")
    assert event_loop.name() == "asyncio"
    assert event_loop.run(_loop_module()).startswith("asyncio")


def test_an_unknown_choice_is_refused_with_the_choices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(event_loop.CHOICE_VARIABLE, "trio")
    main = _loop_module()
    with warnings.catch_warnings():
        # The refused coroutine is closed, not left to warn that it never ran.
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.raises(ConfigError, match="uvloop, asyncio"):
            event_loop.run(main)
    assert inspect.getcoroutinestate(main) == inspect.CORO_CLOSED


def test_a_command_refuses_a_bad_choice_before_it_starts_anything(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv(event_loop.CHOICE_VARIABLE, "trio")
    state = tmp_path / "local"
    code = cli.main(
        ["local", "--job", "examples/bias-audit.yaml", "--state-dir", str(state)]
    )
    assert code == 2
    assert capsys.readouterr().err.strip() == (
        "beacon local: BEACON_EVENT_LOOP='trio': choose one of uvloop, asyncio"
    )
    assert not state.exists()
