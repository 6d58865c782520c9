"""Every command that starts a deployment refuses a --state-dir that cannot
be a directory in one line, before it starts anything."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from beacon import cli
from chaos.__main__ import main as chaos_main

COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "beacon local": lambda argv: cli.main(
        ["local", "--job", "examples/bias-audit.yaml", *argv]
    ),
    "python -m chaos": chaos_main,
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_file_as_state_dir_is_refused_in_one_line(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "file"
    path.write_text("not a folder\n")

    try:
        code = COMMANDS[command](["--state-dir", str(path)])
    except SystemExit as exited:
        code = int(str(exited.code))

    assert code == 2
    err = capsys.readouterr().err
    assert f"argument --state-dir: {path} is a file, not a directory" in err
    assert "Traceback" not in err
