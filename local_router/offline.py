"""The deterministic answer of the offline provider."""

from __future__ import annotations

import logging

from beacon.digests import sha256_hex
from beacon.offline_labels import OFFLINE_LABEL

logger = logging.getLogger(__name__)

PROMPT_EXCERPT_CHARS = 200
DIGEST_CHARS = 12


def offline_answer(region: str, model: str, prompt: str) -> str:
    """The offline answer for one (region, model, prompt); unique to each triple.

    The digest covers the whole prompt, so prompts that share their first
    200 characters still get different answers.
    """
    excerpt = " ".join(prompt[:PROMPT_EXCERPT_CHARS].split())
    digest = sha256_hex(f"{region}|{model}|{prompt}")[:DIGEST_CHARS]
    return (
        f"{OFFLINE_LABEL} {model} in {region} answered the prompt {excerpt} "
        f"(digest {digest})"
    )
