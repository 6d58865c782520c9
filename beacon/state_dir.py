"""The `--state-dir` option of the commands that start a deployment.

Checked as the options are read, so a file or a path that cannot be made is
refused in one line before anything starts, not by a traceback from the
first process that writes there.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


def writable_dir(text: str) -> Path:
    """An argparse type: a writable directory, or one that can be created.

    A missing one is made to prove it can be, then removed again: nothing is
    left behind by a command that goes on to refuse another option.
    """
    path = Path(text)
    missing = [
        p for p in (path, *path.parents) if not p.exists() and not p.is_symlink()
    ]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise argparse.ArgumentTypeError(f"{text} is a file, not a directory") from None
    except OSError as exc:
        raise argparse.ArgumentTypeError(
            f"cannot create directory {text}: {exc.strerror or exc}"
        ) from None
    writable = os.access(path, os.W_OK | os.X_OK)
    for made in missing:
        with contextlib.suppress(OSError):
            made.rmdir()
    if not writable:
        raise argparse.ArgumentTypeError(f"directory {text} is not writable")
    return path
