"""`python -m chaos`: the fault run behind `make chaos`."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from beacon import event_loop
from beacon.state_dir import writable_dir
from chaos.plan import ChaosPlan
from chaos.run import run_chaos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description="Run a job while the router fails and hangs calls and an "
        "agent and the coordinator are killed; check every cell ended once.",
    )
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--fail-rate", type=float, default=0.20)
    parser.add_argument("--hang-rate", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--state-dir",
        type=writable_dir,
        help="keep the deployment's state and logs here (default: a temporary folder)",
    )
    args = parser.parse_args(argv)
    event_loop.check_choice_for(parser)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    plan = ChaosPlan(
        questions=args.questions,
        fail_rate=args.fail_rate,
        hang_rate=args.hang_rate,
        seed=args.seed,
    )
    with tempfile.TemporaryDirectory(prefix="beacon-chaos-") as scratch:
        state_dir = args.state_dir or Path(scratch)
        print(
            f"fault run: {plan.cells} cells, {plan.fail_rate:.0%} of calls fail, "
            f"{plan.hang_rate:.0%} hang; agent of {plan.killed_region} killed "
            f"{len(plan.agent_kills_at)} times, coordinator killed "
            f"{len(plan.coordinator_kills_at)} time(s) and stopped "
            f"{len(plan.coordinator_stops_at)}, router restarted "
            f"{len(plan.router_restarts_at)}",
            flush=True,
        )
        report = event_loop.run(run_chaos(plan, state_dir))
    for line in report.lines():
        print(line)
    print("promises kept" if report.kept_promises else "PROMISES BROKEN")
    return 0 if report.kept_promises else 1


if __name__ == "__main__":
    sys.exit(main())
