"""Job spec validation: each rule names its field and what to fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from beacon.cli import main
from beacon.job_file import check_job_file
from beacon.jobspec import (
    DEFAULT_MAX_ATTEMPTS,
    JobSpecError,
    SpecLimits,
    load_job_file,
    normalize_spec,
    spec_from_mapping,
)
from beacon.v1 import job_pb2

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def valid_spec() -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec(
        job_id="spec-test", models=["llama3.2-1b"], regions=["us-east", "eu-west"]
    )
    spec.questions.add(id="math_basic", text="What is 2+2?")
    spec.questions.add(id="geography_basic", text="What is the capital of France?")
    return spec


def violations(
    spec: job_pb2.JobSpec, limits: SpecLimits | None = None
) -> dict[str, str]:
    with pytest.raises(JobSpecError) as caught:
        normalize_spec(spec, limits)
    return {v.field: v.description for v in caught.value.violations}


def test_valid_spec_gets_defaults() -> None:
    """Defaults fill what the spec leaves out, including the timeout hierarchy."""
    spec = normalize_spec(valid_spec())

    assert spec.samples == 1
    assert spec.max_attempts == DEFAULT_MAX_ATTEMPTS == 5
    assert spec.generation.temperature == pytest.approx(0.1)
    assert spec.generation.max_tokens == 512
    t = spec.timeouts
    assert 0 < t.router_call_seconds < t.cell_attempt_seconds < t.job_seconds
    assert t.router_call_seconds >= 150, "a 150 s cold start must fit"


def test_a_max_tokens_left_out_takes_the_default_and_zero_is_refused() -> None:
    assert normalize_spec(valid_spec()).generation.max_tokens == 512
    spec = valid_spec()
    spec.generation.max_tokens = 0

    found = violations(spec)

    assert "allows no answer" in found["generation.max_tokens"]
    assert "leave it out for 512" in found["generation.max_tokens"]


def test_zero_temperature_is_kept() -> None:
    """An explicit temperature of 0 is a real choice, not 'unset'."""
    spec = valid_spec()
    spec.generation.temperature = 0.0

    assert normalize_spec(spec).generation.temperature == 0.0


def test_aliases_map_to_canonical_regions() -> None:
    """US, EU, APAC and ASIA are mapped explicitly."""
    spec = valid_spec()
    del spec.regions[:]
    spec.regions.extend(["US", "EU", "APAC"])

    assert list(normalize_spec(spec).regions) == ["us-east", "eu-west", "asia-pacific"]


def test_empty_job_id_gets_one_assigned() -> None:
    spec = valid_spec()
    spec.job_id = ""

    assert normalize_spec(spec).job_id.startswith("job-")


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda s: s.regions.append("mars-north"), "regions[2]", "us-east, eu-west"),
        (lambda s: s.regions.append("US"), "regions[2]", "duplicate region"),
        (lambda s: s.models.append("llama3.2-1b"), "models[1]", "duplicate model"),
        (lambda s: s.models.append(""), "models[1]", "not a model id"),
        (
            lambda s: s.questions.add(id="math_basic", text="again?"),
            "questions[2].id",
            "duplicate",
        ),
        (lambda s: s.questions.add(id="", text="no id?"), "questions[2].id", "empty"),
        (
            lambda s: s.questions.add(id="blank", text="   "),
            "questions[2].text",
            "empty",
        ),
        (
            lambda s: s.questions.add(id="long", text="x" * 5000),
            "questions[2].text",
            "limit",
        ),
        (lambda s: setattr(s, "job_id", "bad id!"), "job_id", "letters, digits"),
        (lambda s: setattr(s, "job_id", "audit\n"), "job_id", "letters, digits"),
        (lambda s: s.models.append("mistral-7b\n"), "models[1]", "not a model id"),
        (lambda s: setattr(s, "title", "\x1b[31mred"), "title", "printable"),
        (lambda s: setattr(s, "title", "t" * 300), "title", "limit"),
        (lambda s: setattr(s, "samples", -1), "samples", "outside"),
        (lambda s: setattr(s, "max_attempts", 99), "max_attempts", "outside"),
        (
            lambda s: setattr(s.generation, "temperature", 3.0),
            "generation.temperature",
            "outside",
        ),
        (
            lambda s: setattr(s.generation, "max_tokens", -5),
            "generation.max_tokens",
            "outside",
        ),
        (
            lambda s: setattr(s.timeouts, "job_seconds", -1),
            "timeouts.job_seconds",
            "outside",
        ),
        (
            lambda s: setattr(s.timeouts, "router_call_seconds", 500),
            "timeouts",
            "router_call_seconds < cell_attempt_seconds",
        ),
    ],
    ids=[
        "unknown-region",
        "alias-duplicates-region",
        "duplicate-model",
        "empty-model",
        "duplicate-question",
        "question-without-id",
        "blank-question",
        "oversized-question",
        "bad-job-id",
        "job-id-trailing-newline",
        "model-trailing-newline",
        "title-control-characters",
        "title-too-long",
        "negative-samples",
        "too-many-attempts",
        "temperature-range",
        "max-tokens-range",
        "negative-timeout",
        "timeouts-out-of-order",
    ],
)
def test_rule_names_field(mutate: object, field: str, words: str) -> None:
    """A broken rule is reported against the field that breaks it."""
    spec = valid_spec()
    mutate(spec)  # type: ignore[operator]

    found = violations(spec)

    assert field in found, found
    assert words in found[field]


def test_empty_spec_reports_every_missing_part() -> None:
    found = violations(job_pb2.JobSpec())

    assert {"questions", "models", "regions"} <= set(found)


def test_cell_cap_is_enforced() -> None:
    """A job larger than the configured cap is refused with the numbers."""
    found = violations(valid_spec(), SpecLimits(max_cells=3))

    assert "4 cells" in found["questions"]


def test_regions_limited_to_the_deployment() -> None:
    """A coordinator that serves fewer regions rejects the others by name."""
    found = violations(valid_spec(), SpecLimits(known_regions=("us-east",)))

    assert "region eu-west is not served by this coordinator" in found["regions[1]"]


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("APAC", "region 'APAC' (asia-pacific) is not served by this coordinator"),
        ("asia", "region 'asia' (asia-pacific) is not served by this coordinator"),
        ("asia-pacific", "region asia-pacific is not served by this coordinator"),
        ("mars-north", "unknown region 'mars-north'"),
    ],
)
def test_unserved_region_names_only_what_is_served(name: str, said: str) -> None:
    """Only the configured regions and their aliases are offered as choices."""
    spec = valid_spec()
    del spec.regions[:]
    spec.regions.append(name)

    found = violations(spec, SpecLimits(known_regions=("us-east", "eu-west")))

    assert found["regions[0]"] == (
        f"{said}: use one of us-east, eu-west (or the aliases EU, US)"
    )


def test_a_single_served_region_offers_only_its_own_alias() -> None:
    found = violations(valid_spec(), SpecLimits(known_regions=("us-east",)))

    assert found["regions[1]"].endswith(": use one of us-east (or the aliases US)")


@pytest.mark.parametrize("name", ["bias-audit.yaml", "cross-region-minimal.yaml"])
def test_examples_are_valid(name: str) -> None:
    spec = normalize_spec(load_job_file(EXAMPLES / name))

    assert spec.questions


def test_job_file_with_unknown_field_names_it(tmp_path: Path) -> None:
    path = tmp_path / "job.yaml"
    path.write_text("models: [m]\nregions: [us-east]\nquestons: []\n")

    with pytest.raises(JobSpecError) as caught:
        load_job_file(path)

    assert "questons" in str(caught.value)


def test_key_given_twice_is_refused_with_its_line(tmp_path: Path) -> None:
    """A duplicate key is not silently resolved to its last value."""
    path = tmp_path / "job.yaml"
    path.write_text(
        "job_id: first\njob_id: second\nmodels: [m]\nregions: [us-east]\n"
        "questions: [{id: q, text: 'Hi?'}]\n"
    )

    with pytest.raises(JobSpecError) as caught:
        load_job_file(path)

    assert "'job_id' appears twice" in str(caught.value)
    assert "line 2" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "job.yaml",
            "models: [llama3.2-1b]\nregions:\n  - us-east\n  - narnia\n"
            "questions: [{id: q, text: 'Hi?'}]\n",
            "line 4: regions[1]: unknown region 'narnia'",
        ),
        (
            "job.json",
            '{\n  "models": ["llama3.2-1b"],\n  "regions": ["US"],\n'
            '  "questions": [\n    {"id": "q", "text": "Hi?"},\n'
            '    {"id": "q", "text": "Again?"}\n  ]\n}\n',
            "line 6: questions[1].id: duplicate question id 'q'",
        ),
        (
            "job.json",
            '{"models": ["m"], "regions": ["US"],\n "questions": [],\n'
            ' "generation": {"maxTokens": 99999}}\n',
            "line 3: generation.max_tokens: 99999 is outside",
        ),
        (
            "job.yaml",
            "models: [m]\nregions: [us-east]\nquestions: [{id: q, text: 'Hi?'}]\n"
            "questons: []\n",
            "line 4: ",
        ),
        (
            "job.yaml",
            "models: [m]\nregions: [us-east]\nquestions: [{id: q, text: 'Hi?'}]\n"
            "generation:\n  max_tokens: 0\n",
            "line 5: generation.max_tokens: 0 is outside 1 to 32768",
        ),
        (
            "job.yaml",
            "models: [m]\nregions: [us-east]\nquestions: [{id: q, text: 'Hi?'}]\n"
            "generation:\n  temperature: 'NaN'\n",
            "line 5: generation.temperature: is not a number",
        ),
    ],
    ids=[
        "yaml-region",
        "json-duplicate-question",
        "json-camel-case",
        "unknown-key",
        "yaml-zero-max-tokens",
        "yaml-nan-temperature",
    ],
)
def test_job_file_errors_name_the_line(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(JobSpecError) as caught:
        check_job_file(path)

    assert expected in str(caught.value)


@pytest.mark.parametrize("name", ["job.yaml", "job.json"])
@pytest.mark.parametrize(
    ("generation", "field"),
    [
        ({"temperature": True}, "generation.temperature"),
        ({"max_tokens": True}, "generation.max_tokens"),
        ({"maxTokens": False}, "generation.max_tokens"),
    ],
)
def test_a_boolean_generation_setting_is_refused_by_name(
    tmp_path: Path, name: str, generation: dict[str, bool], field: str
) -> None:
    """`true` is not read as 1 for any number, float or integer alike."""
    path = tmp_path / name
    job = {
        "models": ["m"],
        "regions": ["us-east"],
        "questions": [{"id": "q", "text": "Hi?"}],
        "generation": generation,
    }
    as_json = name.endswith(".json")
    text = json.dumps(job, indent=2) if as_json else yaml.safe_dump(job)
    path.write_text(text)
    key = f'"{next(iter(generation))}"' if as_json else f"{next(iter(generation))}:"
    line = next(n for n, row in enumerate(text.splitlines(), 1) if key in row)

    with pytest.raises(JobSpecError) as caught:
        check_job_file(path)

    given = str(next(iter(generation.values()))).lower()
    assert [(v.field, v.description, v.line) for v in caught.value.violations] == [
        (field, f"{given} is not a number; give a number", line)
    ]


def test_a_boolean_timeout_is_refused_by_name() -> None:
    data = {"timeouts": {"job_seconds": True}, "questions": [{"id": True}]}

    with pytest.raises(JobSpecError) as caught:
        spec_from_mapping(data)

    assert str(caught.value.violations[0]) == (
        "timeouts.job_seconds: true is not a number; give a number"
    )


@pytest.mark.parametrize(
    ("value", "shown"),
    [(2.00000001, "2.00000001"), (-1e-09, "-1e-09"), (3.0, "3")],
)
def test_an_out_of_range_temperature_is_shown_as_given(
    value: float, shown: str
) -> None:
    spec = valid_spec()
    spec.generation.temperature = value

    assert violations(spec)["generation.temperature"].startswith(
        f"{shown} is outside 0 to 2;"
    )


def test_validate_applies_the_cell_cap_it_is_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = str(EXAMPLES / "bias-audit.yaml")

    assert main(["validate", job]) == 0
    assert main(["validate", job, "--max-cells", "10"]) == 2
    assert "72 cells, more than the limit of 10" in capsys.readouterr().err


def test_a_long_question_group_is_refused() -> None:
    spec = valid_spec()
    spec.questions[0].group = "g" * 65

    assert "questions[0].group" in violations(spec)
