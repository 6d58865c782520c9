"""What one benchmark scenario runs: the cells, the router's latency, the load."""

from __future__ import annotations

from dataclasses import dataclass

from beacon.cells import Cell, expand_cells
from beacon.regions import KNOWN_REGIONS
from beacon.v1 import job_pb2

MODELS = ("llama3.2-1b", "mistral-7b", "qwen2.5-1.5b")

# Every call succeeds at once or after the router's latency, so these only
# bound a run that went wrong; none of them is reached in a healthy run.
ROUTER_CALL_SECONDS = 60.0
CELL_ATTEMPT_SECONDS = 120.0
JOB_SECONDS = 3600.0


@dataclass(frozen=True)
class Scenario:
    """`questions` x every model x every region, at one router latency."""

    name: str
    questions: int
    latency_seconds: float
    # Calls in flight per region: the agent's capacity and the baseline's.
    per_region: int = 16
    regions: tuple[str, ...] = KNOWN_REGIONS
    models: tuple[str, ...] = MODELS
    # Whether the direct loop runs too; a memory-only scenario skips it.
    with_baseline: bool = True
    # Baseline-then-Beacon rounds; the machine's other load varies, so the
    # median ratio of several rounds says more than one.
    rounds: int = 1
    # The largest Beacon / baseline wall-time ratio the scenario aims for.
    ratio_target: float = 1.5

    @property
    def cells(self) -> int:
        return len(self.regions) * len(self.models) * self.questions

    def router_args(self) -> tuple[str, ...]:
        return ("--offline-latency", f"{self.latency_seconds:g}")

    def job(self, job_id: str) -> job_pb2.JobSpec:
        spec = job_pb2.JobSpec(
            job_id=job_id,
            title=f"benchmark {self.name}",
            models=list(self.models),
            regions=list(self.regions),
            max_attempts=3,
            timeouts=job_pb2.Timeouts(
                router_call_seconds=ROUTER_CALL_SECONDS,
                cell_attempt_seconds=CELL_ATTEMPT_SECONDS,
                job_seconds=JOB_SECONDS,
            ),
        )
        for index in range(self.questions):
            spec.questions.add(
                id=f"q{index:05d}",
                text=f"Question {index}: what is {index} plus {index + 1}?",
            )
        return spec

    def cells_of(self, job_id: str) -> list[Cell]:
        return list(expand_cells(self.job(job_id)))
