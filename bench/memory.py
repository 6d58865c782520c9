"""Peak resident memory of a running process, as the kernel counts it."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def peak_rss_mib(pid: int) -> float:
    """The process's resident-set high-water mark (VmHWM) so far, in MiB.

    Linux only: read from /proc, so it costs the process nothing.
    """
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            kib = int(line.split()[1])
            return kib / 1024
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")
