"""Beacon: ask language models the same questions from several regions."""

__version__ = "0.1.0"
