"""The bench's options: a count of 0 skips its scenario, a bad value is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import build_parser, main, planned_scenarios


def _names(*argv: str) -> list[str]:
    return [s.name for s in planned_scenarios(build_parser().parse_args(argv))]


def test_by_default_every_scenario_runs() -> None:
    assert _names() == ["slow", "fast", "unloaded", "memory"]


def test_zero_questions_skip_a_scenario() -> None:
    assert _names("--fast-questions", "0") == ["slow", "unloaded"]
    assert _names("--slow-questions", "0", "--unloaded-questions", "0") == [
        "fast",
        "memory",
    ]
    assert _names("--memory-questions", "0") == ["slow", "fast", "unloaded"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--fast-questions", "-1"], "--fast-questions: must be 0 or more, not -1"),
        (["--per-region", "0"], "--per-region: must be 1 or more, not 0"),
        (["--slow-rounds", "two"], "--slow-rounds: must be a whole number"),
        (["--slow-latency", "-0.5"], "--slow-latency: must be between 0 and 60"),
        (["--slow-latency", "nan"], "--slow-latency: must be between 0 and 60"),
        (
            [
                "--slow-questions=0",
                "--fast-questions=0",
                "--unloaded-questions=0",
            ],
            "every scenario has 0 questions",
        ),
    ],
)
def test_a_bad_option_is_refused_in_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("file", "argument --state-dir: {path} is a file, not a directory"),
        ("file/below", "argument --state-dir: cannot create directory {path}: "),
        ("/proc/nope", "argument --state-dir: cannot create directory {path}: "),
    ],
)
def test_a_state_dir_that_cannot_be_a_directory_is_refused_before_any_run(
    tmp_path: Path, where: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a folder\n")
    path = str(tmp_path / where)

    with pytest.raises(SystemExit) as exited:
        main(["--state-dir", path])

    assert exited.value.code == 2
    printed = capsys.readouterr()
    assert message.format(path=path) in printed.err
    assert "Traceback" not in printed.err
    assert "Beacon benchmark" not in printed.out


def test_a_state_dir_that_can_be_created_is_taken_and_not_left_behind(
    tmp_path: Path,
) -> None:
    wanted = tmp_path / "new" / "state"

    args = build_parser().parse_args(["--state-dir", str(wanted)])

    assert args.state_dir == wanted
    assert not (tmp_path / "new").exists()
