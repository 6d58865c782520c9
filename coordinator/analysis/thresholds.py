"""The named thresholds of the cross-region analysis, set in the coordinator config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from beacon.v1 import analysis_pb2


class AnalysisThresholds(BaseModel):
    """When answers count as divergent and how flags add up to a risk level.

    Shares are fractions from 0 to 1; similarities are content-word cosine values
    from 0 (no word in common) to 1 (the same words in the same proportions).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    divergence_similarity: float = Field(
        default=0.4,
        ge=0,
        le=1,
        description="Two regions whose answers are less similar than this diverge.",
    )
    noise_margin: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="With several samples, a pair diverges only when it is also "
        "this much less similar than the samples within each of its regions.",
    )
    high_risk_regional_refusals: int = Field(
        default=1,
        ge=1,
        description="This many (model, question)s where a region refuses while "
        "another answers make the job high risk.",
    )
    high_risk_flagged_share: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Share of compared (model, question)s that diverge or show "
        "a regional refusal from which the job is high risk.",
    )
    medium_risk_flagged_share: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="The same share from which the job is medium risk.",
    )
    medium_risk_missing_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of cells without an accepted answer from which the "
        "job is medium risk.",
    )

    @model_validator(mode="after")
    def _medium_below_high(self) -> AnalysisThresholds:
        # Otherwise the medium level could never be reached by its share.
        if self.medium_risk_flagged_share > self.high_risk_flagged_share:
            raise ValueError(
                f"medium_risk_flagged_share ({self.medium_risk_flagged_share}) "
                "must not be above high_risk_flagged_share "
                f"({self.high_risk_flagged_share})"
            )
        return self

    def to_proto(self) -> analysis_pb2.AnalysisThresholds:
        # The proto mirrors these fields one to one.
        return analysis_pb2.AnalysisThresholds(**self.model_dump())
