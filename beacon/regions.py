"""Canonical region ids and the short aliases users type.

Aliases are mapped explicitly; anything unknown is rejected, never defaulted.
"""

from __future__ import annotations

KNOWN_REGIONS: tuple[str, ...] = ("us-east", "eu-west", "asia-pacific")

ALIASES: dict[str, str] = {
    "US": "us-east",
    "EU": "eu-west",
    "APAC": "asia-pacific",
    "ASIA": "asia-pacific",
}


class UnknownRegionError(ValueError):
    """A region name that is neither a canonical id nor a known alias."""

    def __init__(self, name: str, known: tuple[str, ...] = KNOWN_REGIONS) -> None:
        self.name = name
        aliases = ", ".join(sorted(ALIASES))
        super().__init__(
            f"unknown region {name!r}: use one of {', '.join(known)} "
            f"(or the aliases {aliases})"
        )


def canonical_region(name: str, known: tuple[str, ...] = KNOWN_REGIONS) -> str:
    """Return the canonical id for `name`, or raise UnknownRegionError."""
    if name in known:
        return name
    alias = ALIASES.get(name.strip().upper())
    if alias is not None and alias in known:
        return alias
    raise UnknownRegionError(name, known)
