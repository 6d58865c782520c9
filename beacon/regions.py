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


def _choices(known: tuple[str, ...]) -> str:
    # Only aliases of the offered regions: suggesting others invites a refusal.
    aliases = sorted(a for a, region in ALIASES.items() if region in known)
    text = f"use one of {', '.join(known)}"
    return f"{text} (or the aliases {', '.join(aliases)})" if aliases else text


class UnknownRegionError(ValueError):
    """A region name that is not one of the regions offered here."""

    def __init__(
        self, name: str, known: tuple[str, ...] = KNOWN_REGIONS, problem: str = ""
    ) -> None:
        self.name = name
        super().__init__(f"{problem or f'unknown region {name!r}'}: {_choices(known)}")


class UnservedRegionError(UnknownRegionError):
    """A real region (or its alias) that this deployment does not serve."""

    def __init__(self, name: str, region: str, known: tuple[str, ...]) -> None:
        said = region if name == region else f"{name!r} ({region})"
        super().__init__(
            name, known, f"region {said} is not served by this coordinator"
        )


def canonical_region(name: str, known: tuple[str, ...] = KNOWN_REGIONS) -> str:
    """Return the canonical id for `name`, or raise UnknownRegionError."""
    if name in known:
        return name
    region = name if name in KNOWN_REGIONS else ALIASES.get(name.strip().upper())
    if region is None:
        raise UnknownRegionError(name, known)
    if region not in known:
        raise UnservedRegionError(name, region, known)
    return region
