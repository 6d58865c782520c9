"""Untrusted text made safe to show on a terminal or in a report.

Answers, reasons and question texts come from models, routers and job files.
A bidi embedding, override or isolate control (U+202A-U+202E, U+2066-U+2069)
left open reorders whatever is printed after it, so a table, a diff line or
a page title can be made to read differently from what it holds; other
control characters (escape sequences) can drive a terminal. Each is shown as
a visible `<U+XXXX>` marker instead, so a reader sees that it was there.
"""

from __future__ import annotations

import re
from typing import Final

_HIDDEN_CONTROLS: Final = re.compile(
    "[\u202a-\u202e\u2066-\u2069\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"
)


def shown(text: str) -> str:
    """`text` with each bidi or control character replaced by a marker
    (line breaks and tabs are kept)."""
    return _HIDDEN_CONTROLS.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)
