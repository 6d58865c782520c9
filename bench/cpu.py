"""CPU time spent by each process of a run, as the kernel counts it.

Wall time says how long a run took; CPU time per cell says where the work
went, which is what decides the wall time once both CPUs are busy.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from beacon.processes import ManagedProcess

logger = logging.getLogger(__name__)

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
# This process: the benchmark's client (the baseline loop, or the RunJob
# caller reading Beacon's events).
CLIENT = "client"


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a live process, from /proc (Linux)."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = stat.rsplit(")", 1)[1].split()
    user, system = int(fields[11]), int(fields[12])
    return (user + system) / _TICKS_PER_SECOND


def _role(name: str) -> str:
    # Agents are summed: each handles its own region's share of the cells.
    return "agents" if name.startswith("agent-") else name


@dataclass(frozen=True)
class CpuSnapshot:
    seconds: dict[str, float]

    @classmethod
    def take(cls, processes: list[ManagedProcess]) -> CpuSnapshot:
        seconds: dict[str, float] = {CLIENT: time.process_time()}
        for managed in processes:
            if managed.process.poll() is not None:
                continue
            role = _role(managed.name)
            seconds[role] = seconds.get(role, 0.0) + cpu_seconds(managed.process.pid)
        return cls(seconds)


@dataclass(frozen=True)
class CpuUse:
    """Milliseconds of CPU per cell by role, and CPUs kept busy on average."""

    ms_per_cell: dict[str, float]
    busy_cpus: float

    @classmethod
    def between(
        cls, before: CpuSnapshot, after: CpuSnapshot, cells: int, wall_seconds: float
    ) -> CpuUse:
        spent = {
            role: after.seconds[role] - before.seconds[role]
            for role in after.seconds
            if role in before.seconds
        }
        # Roles idle in this run (the agents during the baseline) are left out.
        shown = {role: s for role, s in spent.items() if s >= 0.005 * wall_seconds}
        return cls(
            {role: s / cells * 1000 for role, s in shown.items()},
            sum(spent.values()) / wall_seconds,
        )

    @property
    def total_ms(self) -> float:
        return sum(self.ms_per_cell.values())

    def describe(self) -> str:
        parts = ", ".join(
            f"{role} {ms:.2f}" for role, ms in sorted(self.ms_per_cell.items())
        )
        return (
            f"CPU per cell {self.total_ms:.2f} ms ({parts}); "
            f"{self.busy_cpus:.2f} CPUs busy"
        )
