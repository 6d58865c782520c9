"""Headless Chromium (Debian's package) for tests of the HTML report.

`make test` installs chromium when it is missing; a test that needs it and
cannot find it fails and says so, never skips, so CI never passes unchecked.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

BROWSER_TIMEOUT_SECONDS = 90


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        "chromium is not on PATH: the HTML report tests need a real browser; "
        "`make test` installs Debian's chromium (apt-get install -y chromium)",
        pytrace=False,
    )


def rendered_dom(page: Path, profile: Path) -> str:
    """The DOM Chromium builds from `page`, serialised after loading."""
    command = [
        chromium(),
        "--headless",
        # Root in CI cannot use Chromium's sandbox; the page has no scripts.
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={profile}",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=BROWSER_TIMEOUT_SECONDS
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
