"""Running the `beacon` command line as a user does, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
COMMAND_TIMEOUT = 120


def beacon(*args: str, token: str = "") -> subprocess.CompletedProcess[str]:
    """`beacon ARGS...`, calling the coordinator with `token` if one is given."""
    return subprocess.run(
        [str(BIN / "beacon"), *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        env={**os.environ, "BEACON_TOKEN": token},
    )
