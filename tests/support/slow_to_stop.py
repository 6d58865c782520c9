"""A child process for ProcessGroup tests: ready at once, slow to stop."""

from __future__ import annotations

import argparse
import signal
import time
from pathlib import Path
from types import FrameType

STOP_SECONDS = 0.5


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args()
    stopping = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_term)
    args.ready_file.write_text("ready", encoding="utf-8")
    while not stopping:
        time.sleep(0.02)
    time.sleep(STOP_SECONDS)


if __name__ == "__main__":
    main()
