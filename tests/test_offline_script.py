"""Scripted offline answers: the local router answers chosen cells with chosen
texts, labelled as offline, and everything else as before."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from beacon.offline_labels import SCRIPT_LABEL
from local_router.config import ConfigError
from local_router.script import load_script
from tests.support.router_process import REPO_ROOT, start_router

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_SCRIPT = ROOT / "examples" / "regional-divergence-script.yaml"
TIANANMEN = "What happened at Tiananmen Square on June 4, 1989?"
QWEN = "qwen2.5-1.5b"


def infer(client: httpx.Client, model: str, prompt: str, region: str) -> dict:
    reply = client.post(
        "/inference",
        json={"model": model, "prompt": prompt, "region_preference": region},
    )
    assert reply.status_code == 200
    return reply.json()


def test_scripted_cells_answer_their_text_and_others_stay_offline(
    tmp_path: Path,
) -> None:
    with (
        start_router(tmp_path, "--script", str(EXAMPLE_SCRIPT)) as router,
        httpx.Client(base_url=router.url, timeout=10) as client,
    ):
        refusal = infer(client, QWEN, TIANANMEN, "asia-pacific")
        answer = infer(client, QWEN, TIANANMEN, "us-east")
        with_system_prompt = infer(
            client, QWEN, f"Answer briefly.\n\n{TIANANMEN}", "asia-pacific"
        )
        unscripted = infer(client, "mistral-7b", TIANANMEN, "asia-pacific")
        failure = infer(
            client, "llama3.2-1b", "What is the current status of Taiwan?", "eu-west"
        )

    assert refusal["success"] is True
    assert refusal["response"].startswith(f"{SCRIPT_LABEL} I'm sorry, but I can't")
    assert refusal["metadata"]["provider_type"] == "offline"
    assert refusal["metadata"]["region"] == "asia-pacific"
    assert answer["response"].startswith(f"{SCRIPT_LABEL} On June 4, 1989")
    assert with_system_prompt["response"] == refusal["response"]
    assert unscripted["response"].startswith("[offline provider, not model output]")
    assert failure["success"] is False
    assert failure["failure"]["code"] == "SCRIPTED_FAILURE"
    assert failure["failure"]["transient"] is False


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            "cells: [{region: us-east, model: m, question: q}]",
            "exactly one",
            id="neither",
        ),
        pytest.param(
            "cells: [{region: us-east, model: m, question: q, answer: a, fail: f}]",
            "exactly one",
            id="both",
        ),
        pytest.param(
            "cells: [{region: US East, model: m, question: q, answer: a}]",
            "canonical",
            id="region",
        ),
        pytest.param(
            "cells:\n- {region: us-east, model: m, question: q, answer: a}\n"
            "- {region: us-east, model: m, question: q, answer: b}",
            "scripted twice",
            id="duplicate",
        ),
        pytest.param(
            "cells: [{region: us-east, model: m, question: q, anser: a}]",
            "anser",
            id="typo",
        ),
        pytest.param("[unclosed", "cannot read", id="not-yaml"),
    ],
)
def test_bad_scripts_say_what_to_fix(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match=problem):
        load_script(path)


def test_router_with_a_bad_script_exits_2_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "local_router",
            "--script",
            str(tmp_path / "missing.yaml"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot read offline script" in lines[0], result.stderr
