"""Expanding a job into cells, and the prompt each cell sends."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from beacon.digests import sha256_hex
from beacon.v1 import job_pb2


@dataclass(frozen=True, slots=True)
class Cell:
    job_id: str
    cell_id: str
    region: str
    model: str
    question_id: str
    sample: int
    prompt: str
    prompt_sha256: str


def cell_id_for(
    job_id: str, region: str, model: str, question_id: str, sample: int
) -> str:
    """Deterministic id: the same job always expands to the same cell ids."""
    key = json.dumps([job_id, region, model, question_id, sample])
    return "c_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def compose_prompt(system_prompt: str, question_text: str) -> str:
    """The exact text sent to the router for one question."""
    if system_prompt:
        return f"{system_prompt}\n\n{question_text}"
    return question_text


def cell_count(spec: job_pb2.JobSpec) -> int:
    samples = max(spec.samples, 1)
    return len(spec.regions) * len(spec.models) * len(spec.questions) * samples


def expand_cells(spec: job_pb2.JobSpec) -> Iterator[Cell]:
    """Every (region, model, question, sample) of a validated spec, once."""
    samples = max(spec.samples, 1)
    # Each read of a message's string field makes a new str: read them once,
    # so that a large job's cells share their ids instead of copying them.
    job_id = spec.job_id
    regions = list(spec.regions)
    models = list(spec.models)
    question_ids = [q.id for q in spec.questions]
    prompts = [compose_prompt(spec.system_prompt, q.text) for q in spec.questions]
    digests = [sha256_hex(prompt) for prompt in prompts]
    for region in regions:
        for model in models:
            for question_id, prompt, digest in zip(
                question_ids, prompts, digests, strict=True
            ):
                for sample in range(samples):
                    yield Cell(
                        job_id=job_id,
                        cell_id=cell_id_for(job_id, region, model, question_id, sample),
                        region=region,
                        model=model,
                        question_id=question_id,
                        sample=sample,
                        prompt=prompt,
                        prompt_sha256=digest,
                    )
