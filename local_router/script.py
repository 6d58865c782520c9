"""Scripted offline answers: fixed texts per (region, model, question).

A script makes the offline provider answer chosen cells with chosen texts
(a refusal in one region, a divergent answer in another, a failure), so a
whole deployment can be run against a known pattern of answers. Every
scripted answer is labelled as offline, like any other offline answer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from beacon.yamlfiles import load_yaml
from local_router.config import ConfigError, check_region_id

logger = logging.getLogger(__name__)

SCRIPTED_FAILURE = "SCRIPTED_FAILURE"


class ScriptedCell(BaseModel):
    """What one region answers one model for one question text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str
    model: str = Field(min_length=1)
    question: str = Field(min_length=1, description="The question text asked.")
    answer: str | None = Field(default=None, description="The text to answer.")
    fail: str | None = Field(
        default=None, description="Fail the call with this message instead."
    )

    @model_validator(mode="after")
    def _one_outcome(self) -> ScriptedCell:
        check_region_id(self.region)
        if (self.answer is None) == (self.fail is None):
            raise ValueError("give exactly one of `answer` and `fail`")
        return self

    def matches(self, prompt: str) -> bool:
        # A job's system prompt comes before the question, after a blank line.
        return prompt == self.question or prompt.endswith(f"\n\n{self.question}")


class OfflineScript(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cells: list[ScriptedCell]

    @model_validator(mode="after")
    def _unique(self) -> OfflineScript:
        seen: set[tuple[str, str, str]] = set()
        for cell in self.cells:
            key = (cell.region, cell.model, cell.question)
            if key in seen:
                raise ValueError(
                    f"{cell.region}/{cell.model} is scripted twice for "
                    f"{cell.question!r}"
                )
            seen.add(key)
        return self

    def find(self, region: str, model: str, prompt: str) -> ScriptedCell | None:
        for cell in self.cells:
            if cell.region == region and cell.model == model and cell.matches(prompt):
                return cell
        return None


def load_script(path: Path) -> OfflineScript:
    """Read a YAML or JSON script, or raise ConfigError saying what to fix."""
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read offline script {path}: {exc}") from exc
    try:
        script = OfflineScript.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise ConfigError(f"offline script {path}: {problems}") from exc
    logger.info("offline script %s scripts %d cells", path, len(script.cells))
    return script
