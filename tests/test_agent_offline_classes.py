"""An agent classifies a scripted offline answer without its label: a
scripted empty answer is empty, and the label stays in the signed output."""

from __future__ import annotations

from pathlib import Path

import grpc
import yaml

from beacon.channels import client_options
from beacon.offline_labels import SCRIPT_LABEL
from beacon.v1 import receipt_pb2, region_agent_service_pb2_grpc
from tests.support.router_process import start_router
from tests.support.servers import start_agent
from tests.test_agent import execute, request

EMPTY_QUESTION = "[scripted-empty] What is nothing?"
REFUSED_QUESTION = "[scripted-refusal] What happened in 1989?"
ANSWERED_QUESTION = "[scripted-answer] What is the capital of France?"


async def test_scripted_answers_are_classified_without_their_label(
    tmp_path: Path,
) -> None:
    script = tmp_path / "script.yaml"
    cells = [
        (EMPTY_QUESTION, ""),
        (REFUSED_QUESTION, "I'm sorry, but I can't discuss that."),
        (ANSWERED_QUESTION, "Paris."),
    ]
    script.write_text(
        yaml.safe_dump(
            {
                "cells": [
                    {
                        "region": "eu-west",
                        "model": "llama3.2-1b",
                        "question": q,
                        "answer": a,
                    }
                    for q, a in cells
                ]
            }
        ),
        encoding="utf-8",
    )
    with start_router(tmp_path, "--script", str(script)) as router:
        agent = await start_agent(tmp_path, "eu-west", router.url, capacity=4)
        try:
            async with grpc.aio.insecure_channel(
                agent.address, options=client_options()
            ) as channel:
                stub = region_agent_service_pb2_grpc.RegionAgentServiceStub(channel)
                bodies = await execute(
                    stub,
                    [
                        request("job-scripted", f"q{i}", q)
                        for i, (q, _) in enumerate(cells)
                    ],
                )
        finally:
            await agent.stop()

    by_question = {b.question_id: b for b in bodies}
    empty, refusal, answer = (by_question[f"q{i}"] for i in range(3))
    assert all(b.router.offline for b in bodies)
    assert empty.output == SCRIPT_LABEL
    assert empty.classification == receipt_pb2.CLASSIFICATION_EMPTY
    assert refusal.output.startswith(SCRIPT_LABEL)
    assert refusal.classification == receipt_pb2.CLASSIFICATION_REFUSED
    assert refusal.classification_rule == "sorry_but"
    assert answer.output == f"{SCRIPT_LABEL} Paris."
    assert answer.classification == receipt_pb2.CLASSIFICATION_ANSWERED
