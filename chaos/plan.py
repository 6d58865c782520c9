"""What a fault run does: the job, the faults the router injects, the kills."""

from __future__ import annotations

from dataclasses import dataclass

from beacon.regions import KNOWN_REGIONS
from beacon.v1 import job_pb2

MODELS = ("llama3.2-1b", "mistral-7b", "qwen2.5-1.5b")

# How the failing share of calls is split between the router's failure
# shapes: mostly transient ones, which are retried, and some permanent ones,
# which end their cell as failed at once.
FAILURE_MIX = {
    "transient": 0.40,
    "unavailable": 0.25,
    "not-json": 0.20,
    "permanent": 0.075,
    "invalid": 0.075,
}


@dataclass(frozen=True)
class ChaosPlan:
    questions: int = 100
    regions: tuple[str, ...] = KNOWN_REGIONS
    models: tuple[str, ...] = MODELS
    fail_rate: float = 0.20
    hang_rate: float = 0.02
    seed: int = 7
    # Each offline answer takes this long, so kills land while cells run.
    latency_seconds: float = 0.25
    agent_capacity: int = 16
    # Progress (share of cells final) at which the agent is killed, and at
    # which the coordinator is killed.
    agent_kills_at: tuple[float, ...] = (0.15, 0.5)
    coordinator_kills_at: tuple[float, ...] = (0.33,)
    # ... at which the coordinator is stopped with SIGTERM (it drains) and
    # started again, and at which the router is restarted the same way.
    coordinator_stops_at: tuple[float, ...] = (0.7,)
    router_restarts_at: tuple[float, ...] = (0.85,)
    # How long a killed agent stays down.
    agent_down_seconds: float = 1.5
    max_attempts: int = 6
    router_call_seconds: float = 2.0
    cell_attempt_seconds: float = 4.0
    job_seconds: float = 900.0

    @property
    def cells(self) -> int:
        return len(self.regions) * len(self.models) * self.questions

    @property
    def killed_region(self) -> str:
        return self.regions[-1]

    def router_args(self) -> tuple[str, ...]:
        args = ["--offline-latency", str(self.latency_seconds)]
        args += ["--fault-seed", str(self.seed)]
        rates = {s: self.fail_rate * share for s, share in FAILURE_MIX.items()}
        rates["hang"] = self.hang_rate
        for shape, rate in rates.items():
            args += ["--fault-rate", f"{shape}={rate:.6f}"]
        return tuple(args)

    def job(self, job_id: str) -> job_pb2.JobSpec:
        spec = job_pb2.JobSpec(
            job_id=job_id,
            title="fault run",
            models=list(self.models),
            regions=list(self.regions),
            max_attempts=self.max_attempts,
            timeouts=job_pb2.Timeouts(
                router_call_seconds=self.router_call_seconds,
                cell_attempt_seconds=self.cell_attempt_seconds,
                job_seconds=self.job_seconds,
            ),
        )
        for index in range(self.questions):
            spec.questions.add(
                id=f"q{index:05d}",
                text=f"Question {index}: what is {index} plus {index + 1}?",
            )
        return spec
