"""Expanding a job into cells: exactly R x M x Q x S, deterministic, distinct."""

from __future__ import annotations

import pytest

from beacon.cells import cell_id_for, compose_prompt, expand_cells
from beacon.digests import sha256_hex
from beacon.jobspec import normalize_spec
from beacon.v1 import job_pb2


def make_spec(
    regions: int, models: int, questions: int, samples: int
) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(
        job_id="expand-test",
        regions=["us-east", "eu-west", "asia-pacific"][:regions],
        models=[f"model-{m}" for m in range(models)],
        samples=samples,
    )
    for q in range(questions):
        spec.questions.add(id=f"q{q}", text=f"Question number {q}?")
    return normalize_spec(spec)


@pytest.mark.parametrize(
    ("regions", "models", "questions", "samples"),
    [(1, 1, 1, 1), (2, 3, 3, 1), (3, 3, 8, 1), (3, 2, 4, 3)],
    ids=["single", "minimal-18", "audit-72", "with-samples"],
)
def test_cell_count_is_the_product(
    regions: int, models: int, questions: int, samples: int
) -> None:
    """A job expands to exactly R x M x Q x S cells, each with its own id."""
    cells = list(expand_cells(make_spec(regions, models, questions, samples)))

    assert len(cells) == regions * models * questions * samples
    assert len({c.cell_id for c in cells}) == len(cells)
    combos = {(c.region, c.model, c.question_id, c.sample) for c in cells}
    assert len(combos) == len(cells)


def test_expansion_is_deterministic() -> None:
    """The same job always expands to the same cells in the same order."""
    first = list(expand_cells(make_spec(2, 3, 3, 1)))
    second = list(expand_cells(make_spec(2, 3, 3, 1)))

    assert first == second


def test_each_cell_carries_its_own_question_text() -> None:
    """A cell's prompt is its own question's text, never another's or an id."""
    spec = make_spec(2, 3, 3, 1)
    texts = {q.id: q.text for q in spec.questions}

    for cell in expand_cells(spec):
        assert cell.prompt == texts[cell.question_id]
        assert cell.prompt_sha256 == sha256_hex(cell.prompt)


def test_system_prompt_precedes_the_question() -> None:
    """The declared system prompt is sent before the question text."""
    spec = make_spec(1, 1, 2, 1)
    spec.system_prompt = "Answer briefly."

    prompts = [c.prompt for c in expand_cells(spec)]

    assert prompts == [
        compose_prompt("Answer briefly.", "Question number 0?"),
        compose_prompt("Answer briefly.", "Question number 1?"),
    ]
    assert prompts[0] == "Answer briefly.\n\nQuestion number 0?"


def test_cell_ids_depend_on_the_job_and_every_coordinate() -> None:
    """Changing any coordinate changes the cell id."""
    base = cell_id_for("job", "us-east", "m", "q", 0)
    variants = [
        cell_id_for("job2", "us-east", "m", "q", 0),
        cell_id_for("job", "eu-west", "m", "q", 0),
        cell_id_for("job", "us-east", "m2", "q", 0),
        cell_id_for("job", "us-east", "m", "q2", 0),
        cell_id_for("job", "us-east", "m", "q", 1),
    ]
    assert base not in variants
    assert len(set(variants)) == len(variants)
