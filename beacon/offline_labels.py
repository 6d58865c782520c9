"""The labels the offline provider puts in front of every answer it writes.

Offline answers say plainly, in their text, that they are not model output,
and every receipt of one says `router.offline = true`. The label stays in the
answer everywhere it is shown; only the classifier and the similarity
measure read an offline answer without it, so that a scripted empty answer
is empty and two scripted answers are not alike merely by their label.
"""

from __future__ import annotations

from typing import Final

OFFLINE_LABEL: Final = "[offline provider, not model output]"
SCRIPT_LABEL: Final = "[offline script, not model output]"


def labelled(label: str, text: str) -> str:
    """`text` with `label` in front (the label alone for an empty text)."""
    return f"{label} {text}" if text else label


def without_offline_label(text: str) -> str:
    """The answer without a leading offline label; other text unchanged."""
    for label in (OFFLINE_LABEL, SCRIPT_LABEL):
        if text.startswith(label):
            return text[len(label) :].removeprefix(" ")
    return text
