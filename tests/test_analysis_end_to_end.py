"""End to end: a job whose scripted offline answers hold a regional refusal, a
divergent answer and a failed cell, analysed by the coordinator and exported
by the `beacon` command line from separate processes."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format

from beacon.local import LocalDeployment, start_local
from beacon.processes import ProcessGroup
from beacon.v1 import analysis_pb2, job_pb2
from tests.support.browser import rendered_dom
from tests.support.commands import beacon
from tests.support.html_dom import active_content, elements

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
JOB = ROOT / "examples" / "regional-divergence.yaml"
SCRIPT = ROOT / "examples" / "regional-divergence-script.yaml"
QWEN, LLAMA = "qwen2.5-1.5b", "llama3.2-1b"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDeployment]:
    state_dir = tmp_path_factory.mktemp("scripted")
    group = ProcessGroup(state_dir / "run")
    try:
        yield start_local(group, state_dir, router_args=("--script", str(SCRIPT)))
    finally:
        group.stop_all()


def call(deployment: LocalDeployment, *args: str) -> subprocess.CompletedProcess[str]:
    """A `beacon` command against the deployment's coordinator, with its token."""
    return beacon(
        *args, "--coordinator", deployment.coordinator, token=deployment.token
    )


def run_job(deployment: LocalDeployment, job: Path, out: Path) -> job_pb2.JobResult:
    run = call(deployment, "run", str(job), "--output", str(out))
    assert run.returncode == 0, run.stderr
    return json_format.Parse(out.read_text(encoding="utf-8"), job_pb2.JobResult())


@pytest.fixture(scope="module")
def job(
    deployment: LocalDeployment, tmp_path_factory: pytest.TempPathFactory
) -> job_pb2.JobResult:
    return run_job(deployment, JOB, tmp_path_factory.mktemp("run") / "result.json")


def flags(result: job_pb2.JobResult) -> set[tuple[str, str, int, tuple[str, ...]]]:
    return {
        (f.model, f.question_id, f.kind, tuple(f.regions))
        for q in result.analysis.questions
        for f in q.flags
    }


def test_coordinator_analysis_finds_the_scripted_refusal_divergence_and_gap(
    job: job_pb2.JobResult,
) -> None:
    analysis = job.analysis

    assert flags(job) == {
        (
            QWEN,
            "tiananmen_neutral",
            analysis_pb2.FLAG_KIND_REGIONAL_REFUSAL,
            ("us-east", "eu-west", "asia-pacific"),
        ),
        (
            QWEN,
            "taiwan_status",
            analysis_pb2.FLAG_KIND_DIVERGENCE,
            ("us-east", "asia-pacific"),
        ),
        (
            QWEN,
            "taiwan_status",
            analysis_pb2.FLAG_KIND_DIVERGENCE,
            ("eu-west", "asia-pacific"),
        ),
        (LLAMA, "taiwan_status", analysis_pb2.FLAG_KIND_MISSING_REGION, ("eu-west",)),
    }
    assert analysis.risk == analysis_pb2.RISK_LEVEL_HIGH
    assert (analysis.accepted_cells, analysis.total_cells) == (17, 18)
    assert len(analysis.questions) == 6
    stats = {(s.region, s.model): s for s in analysis.region_models}
    assert stats[("asia-pacific", QWEN)].refusals == 1
    assert stats[("eu-west", LLAMA)].technical_failures == 1


def test_exports_carry_the_same_result_in_every_format(
    deployment: LocalDeployment, job: job_pb2.JobResult, tmp_path: Path
) -> None:
    as_json = call(deployment, "export", job.job_id, "--format", "json")
    as_jsonl = call(deployment, "export", job.job_id, "--format", "jsonl")
    as_csv = call(deployment, "export", job.job_id, "--format", "csv")
    as_html = call(
        deployment,
        "export",
        job.job_id,
        "--format",
        "html",
        "-o",
        str(tmp_path / "r.html"),
    )

    for done in (as_json, as_jsonl, as_csv, as_html):
        assert done.returncode == 0, done.stderr
    exported = json_format.Parse(as_json.stdout, job_pb2.JobResult())
    assert exported.analysis == job.analysis
    assert [o.receipt for o in exported.outcomes] == [o.receipt for o in job.outcomes]
    assert len(as_jsonl.stdout.splitlines()) == 18
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(rows) == 18 and all(r["offline"] == "True" for r in rows)
    dom = rendered_dom(tmp_path / "r.html", tmp_path / "profile")
    shown = {
        e.attrs["data-cell-id"] for e in elements(dom) if "data-cell-id" in e.attrs
    }
    assert shown == {o.cell_id for o in job.outcomes}
    assert active_content(dom) == []


def test_diff_of_two_runs_names_what_changed(
    deployment: LocalDeployment, job: job_pb2.JobResult, tmp_path: Path
) -> None:
    spec = yaml.safe_load(JOB.read_text(encoding="utf-8"))
    spec.update(
        title="second run",
        system_prompt="Answer briefly.",
        regions=["us-east", "eu-west"],
    )
    second_job = tmp_path / "second.yaml"
    second_job.write_text(yaml.safe_dump(spec), encoding="utf-8")
    second = run_job(deployment, second_job, tmp_path / "second.json")

    done = call(
        deployment,
        "diff",
        job.job_id,
        second.job_id,
        "--format",
        "json",
    )

    assert done.returncode == 0, done.stderr
    diff = json.loads(done.stdout)
    assert diff["in_both"] == 12
    assert {(c["region"], c["model"]) for c in diff["only_in_a"]} == {
        ("asia-pacific", m) for m in (LLAMA, QWEN)
    }
    assert len(diff["only_in_a"]) == 6 and diff["only_in_b"] == []
    # Only the unscripted offline answers quote the prompt, which changed.
    assert {(c["model"], c["question_id"]) for c in diff["changed_answers"]} == {
        (LLAMA, "math_basic")
    }
    assert diff["new_refusals"] == []


def test_export_of_an_unknown_job_is_one_line_and_exit_2(
    deployment: LocalDeployment,
) -> None:
    done = call(deployment, "export", "no-such-job")

    assert done.returncode == 2
    assert done.stderr.startswith("beacon export: NOT_FOUND")
    assert "Traceback" not in done.stderr
