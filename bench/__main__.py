"""`python -m bench`: the benchmark behind `make bench`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from beacon import event_loop
from beacon.state_dir import writable_dir
from bench.plan import Scenario
from bench.report import MemoryGrowth, scenario_lines
from bench.scenario import ScenarioResult, run_scenario

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    event_loop.check_choice_for(parser)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")

    scenarios = planned_scenarios(args)
    if not scenarios:
        parser.error("every scenario has 0 questions: there is nothing to run")
    print(
        f"Beacon benchmark on {os.cpu_count()} CPUs; every process and the "
        f"baseline run on the {event_loop.name()} event loop",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="beacon-bench-") as scratch:
        root = args.state_dir or Path(scratch)
        results = {s.name: _run(s, root) for s in scenarios}
    if "memory" in results:
        growth = MemoryGrowth(results["fast"], results["memory"])
        print("\n".join(growth.lines()), flush=True)
    # The numbers are reported, not judged; only a job that did not complete
    # every cell fails the run.
    return 0 if all(r.all_completed for r in results.values()) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run the same cells through Beacon and through a direct "
        "call loop; print wall times, added latency and peak memory.",
    )
    parser.add_argument(
        "--slow-questions",
        type=_count,
        default=100,
        help="questions of the run at --slow-latency (x 3 models x 3 regions; "
        "0 skips it)",
    )
    parser.add_argument("--slow-latency", type=_seconds, default=0.2)
    parser.add_argument("--slow-rounds", type=_positive, default=3)
    parser.add_argument(
        "--fast-questions",
        type=_count,
        default=1000,
        help="questions of the run at 0 ms router latency (0 skips it, and "
        "with it the memory comparison)",
    )
    parser.add_argument("--fast-rounds", type=_positive, default=1)
    parser.add_argument(
        "--memory-questions",
        type=_count,
        default=10_000,
        help="questions of the Beacon-only run whose coordinator memory is "
        "compared with the 0 ms run's (0 skips it)",
    )
    parser.add_argument(
        "--unloaded-questions",
        type=_count,
        default=10,
        help="questions of a run at --slow-latency with one call in flight per "
        "region, which shows the latency Beacon adds to a cell that waits "
        "for no other (0 skips it)",
    )
    parser.add_argument("--per-region", type=_positive, default=16)
    parser.add_argument(
        "--state-dir", type=writable_dir, help="keep state and logs here"
    )
    return parser


def planned_scenarios(args: argparse.Namespace) -> list[Scenario]:
    """The scenarios the options ask for; a count of 0 questions skips one."""
    candidates = [
        Scenario(
            "slow",
            args.slow_questions,
            args.slow_latency,
            args.per_region,
            rounds=args.slow_rounds,
            ratio_target=1.10,
        ),
        Scenario(
            "fast",
            args.fast_questions,
            0.0,
            args.per_region,
            rounds=args.fast_rounds,
            ratio_target=1.5,
        ),
        Scenario(
            "unloaded",
            args.unloaded_questions,
            args.slow_latency,
            per_region=1,
            ratio_target=1.10,
        ),
        # Measured against the 0 ms run's coordinator, so only beside it.
        Scenario(
            "memory",
            args.memory_questions if args.fast_questions else 0,
            0.0,
            args.per_region,
            with_baseline=False,
        ),
    ]
    return [scenario for scenario in candidates if scenario.questions]


def _count(text: str) -> int:
    return _whole_number(text, least=0)


def _positive(text: str) -> int:
    return _whole_number(text, least=1)


def _whole_number(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number, not {text!r}"
        ) from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {least} or more, not {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds, not {text!r}"
        ) from None
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(
            f"must be between 0 and 60 seconds, not {value}"
        )
    return value


def _run(scenario: Scenario, root: Path) -> ScenarioResult:
    result = event_loop.run(
        run_scenario(
            scenario,
            root / scenario.name,
            fetch_result=scenario.with_baseline,
        )
    )
    if scenario.with_baseline:
        print("\n".join(scenario_lines(result)), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main())
