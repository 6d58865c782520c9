"""The `beacon` command's entry point.

The command line's imports take a few tenths of a second; a Ctrl-C during
them ends the command as quietly as it does later, with no traceback.
"""

from __future__ import annotations

# The shell's code for a command ended by SIGINT.
INTERRUPTED = 130


def main() -> int:
    try:
        from beacon.cli import main as run_command

        return run_command()
    except KeyboardInterrupt:
        return INTERRUPTED
