"""One configuration per server: file < BEACON_* environment < flags."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from beacon.config_command import ATTEMPT, JOB, ROUTER_CALL, UPSTREAM, Layer, checks
from beacon.settings import ConfigError
from beacon.signing import SigningKey
from coordinator.config import CoordinatorConfig, load_coordinator_config
from region_agent.config import load_agent_config

BIN = Path(sys.executable).parent


def beacon(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [str(BIN / "beacon"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("BEACON_")},
            **(env or {}),
        },
    )


@pytest.fixture
def coordinator_file(tmp_path: Path) -> Path:
    SigningKey.generate().write(tmp_path / "us-east.key")
    path = tmp_path / "coordinator.yaml"
    path.write_text(
        "listen: 127.0.0.1:50051\n"
        "store: from-file.db\n"
        "retry_max_seconds: 7\n"
        "regions:\n"
        "  US:\n"
        "    agents: [{address: '127.0.0.1:50061', public_key: us-east.pub}]\n",
        encoding="utf-8",
    )
    return path


def test_flags_override_environment_which_overrides_the_file(
    coordinator_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_COORDINATOR_LISTEN", "127.0.0.1:6000")
    monkeypatch.setenv("BEACON_COORDINATOR_STORE", "from-env.db")

    config = load_coordinator_config(coordinator_file, store=Path("from-flag.db"))

    assert config.listen == "127.0.0.1:6000"  # environment over file
    assert config.store == Path("from-flag.db")  # flag over environment
    assert config.retry_max_seconds == 7  # file over default
    assert config.region_ids == ("us-east",)
    # A relative key path is read from beside the file.
    assert config.regions["us-east"].agents[0].pinned_key()


def test_nested_settings_come_from_json_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey.generate()
    monkeypatch.setenv(
        "BEACON_COORDINATOR_REGIONS",
        '{"eu-west": {"agents": [{"address": "127.0.0.1:50062", '
        f'"public_key": "{key.public.b64}"}}]}}}}',
    )
    config = load_coordinator_config(None)
    assert config.region_ids == ("eu-west",)


def test_an_error_names_the_setting_and_where_its_value_came_from(
    coordinator_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_COORDINATOR_RETRY_BASE_SECONDS", "-1")
    with pytest.raises(ConfigError) as caught:
        load_coordinator_config(coordinator_file, listen="nowhere")
    message = str(caught.value)
    assert "\n" not in message
    assert "listen:" in message and "(from --listen)" in message
    assert "retry_base_seconds:" in message
    assert "BEACON_COORDINATOR_RETRY_BASE_SECONDS" in message


def test_a_missing_setting_says_how_to_give_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_agent_config(None, region="EU", router_url=None, signing_key=None)
    message = str(caught.value)
    assert "router_url: Field required" in message
    assert "--router" in message and "BEACON_AGENT_ROUTER_URL" in message


def test_unknown_setting_in_a_file_is_refused(coordinator_file: Path) -> None:
    coordinator_file.write_text(
        coordinator_file.read_text() + "retries_max: 3\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="retries_max: Extra inputs"):
        load_coordinator_config(coordinator_file)


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["agent", "--region", "Mars"], {}, "region"),
        (
            ["agent", "--region", "EU", "--router", "http://127.0.0.1:1"],
            {"BEACON_AGENT_CAPACITY": "lots"},
            "BEACON_AGENT_CAPACITY",
        ),
        (["coordinator"], {}, "regions"),
        (["coordinator"], {"BEACON_COORDINATOR_REGIONS": "{not json"}, "regions"),
        (["router", "--config", "missing.yaml"], {}, "missing.yaml"),
        (["router"], {"BEACON_ROUTER_PORT": "70000"}, "BEACON_ROUTER_PORT"),
    ],
)
def test_bad_configuration_exits_with_one_line(
    tmp_path: Path, args: list[str], env: dict[str, str], named: str
) -> None:
    result = beacon(*args, env=env, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr


def test_beacon_config_prints_effective_settings_and_timeouts(
    coordinator_file: Path,
) -> None:
    result = beacon(
        "config",
        "coordinator",
        "--config",
        str(coordinator_file),
        "--listen",
        "127.0.0.1:7000",
        env={"BEACON_COORDINATOR_RETRY_MAX_SECONDS": "9"},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "listen: 127.0.0.1:7000" in out
    assert "retry_max_seconds: 9.0" in out
    assert "us-east:" in out
    assert "ok: router call 180 s < cell attempt 240 s < job 3600 s" in out
    assert "ok: cold start 150 s < upstream timeout 170 s" in out
    assert "PROBLEM" not in out


def test_beacon_config_flags_a_timeout_that_breaks_the_hierarchy(
    tmp_path: Path,
) -> None:
    result = beacon(
        "config",
        "router",
        "--upstream",
        "eu-west=http://127.0.0.1:1/v1",
        "--upstream-timeout",
        "eu-west=200",
    )
    assert result.returncode == 1, result.stderr
    assert (
        "PROBLEM: this should hold but does not: upstream 200 s < router call 180 s"
        in result.stdout
    )


def test_beacon_config_of_a_direct_openai_agent_has_no_router_upstream(
    tmp_path: Path,
) -> None:
    SigningKey.generate().write(tmp_path / "eu-west.key")
    result = beacon(
        "config",
        "agent",
        "--region",
        "EU",
        "--router",
        "http://127.0.0.1:11434/v1",
        "--router-kind",
        "openai",
        "--signing-key",
        str(tmp_path / "eu-west.key"),
    )
    assert result.returncode == 0, result.stderr
    assert "upstream model server" not in result.stdout
    assert "ok: cold start 150 s < router call timeout 180 s" in result.stdout
    assert "router_kind: openai" in result.stdout


def test_a_nested_variable_is_named_when_its_value_is_wrong(
    coordinator_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEACON_COORDINATOR_ANALYSIS__DIVERGENCE_SIMILARITY", "0.5")
    config = load_coordinator_config(coordinator_file)
    assert config.analysis.divergence_similarity == 0.5

    monkeypatch.setenv("BEACON_COORDINATOR_ANALYSIS__DIVERGENCE_SIMILARITY", "5")
    with pytest.raises(ConfigError) as caught:
        load_coordinator_config(coordinator_file)
    assert "analysis.divergence_similarity:" in str(caught.value)
    assert "BEACON_COORDINATOR_ANALYSIS__DIVERGENCE_SIMILARITY" in str(caught.value)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_infinite_seconds_are_refused(tmp_path: Path, value: str) -> None:
    SigningKey.generate().write(tmp_path / "us-east.key")
    result = beacon(
        "config",
        "agent",
        "--region",
        "us-east",
        "--router",
        "http://127.0.0.1:1",
        "--signing-key",
        str(tmp_path / "us-east.key"),
        env={"BEACON_AGENT_MAX_ROUTER_TIMEOUT_SECONDS": value},
    )
    assert result.returncode == 2
    assert "max_router_timeout_seconds" in result.stderr
    assert "finite" in result.stderr


@pytest.mark.parametrize(
    ("base", "cap", "said"),
    [
        (40, None, "retry_base_seconds 40 is above"),
        (5.0000001, 5, "retry_base_seconds 5.0000001 is above retry_max_seconds 5;"),
    ],
)
def test_a_first_retry_delay_above_the_cap_is_refused(
    base: float, cap: float | None, said: str
) -> None:
    """The values are shown as given, so a near miss reads as one."""
    limits = {"retry_base_seconds": base}
    if cap is not None:
        limits["retry_max_seconds"] = cap
    with pytest.raises(ValueError, match=re.escape(said)):
        CoordinatorConfig.model_validate(
            {
                "regions": {
                    "us-east": {
                        "agents": [
                            {
                                "address": "127.0.0.1:1",
                                "public_key": SigningKey.generate().public.b64,
                            }
                        ]
                    }
                },
                **limits,
            }
        )


def test_a_near_miss_in_the_timeout_hierarchy_shows_the_digits_that_miss() -> None:
    layers = [
        Layer(UPSTREAM, "upstream", 180.0000001),
        Layer(ROUTER_CALL, "router call", 180.0),
        Layer(ATTEMPT, "cell attempt", 240.0),
        Layer(JOB, "job", 3600.0),
    ]

    assert (
        "PROBLEM: this should hold but does not: upstream 180.0000001 s < "
        "router call 180 s, so the agent sees the upstream's own error"
    ) in checks(layers)
