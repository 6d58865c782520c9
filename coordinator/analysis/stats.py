"""Per region and model: how often it refuses and how alike it is to the rest."""

from __future__ import annotations

from collections.abc import Sequence

from beacon.v1 import analysis_pb2
from coordinator.analysis.classes import ACCEPTED, REFUSAL, TECHNICAL_FAILURE
from coordinator.analysis.similarity import mean

DIGITS = 4


def region_model_stats(
    questions: Sequence[analysis_pb2.QuestionAnalysis],
    regions: Sequence[str],
    models: Sequence[str],
) -> list[analysis_pb2.RegionModelStats]:
    stats = []
    for model in models:
        of_model = [q for q in questions if q.model == model]
        for region in regions:
            samples = [
                s
                for q in of_model
                for r in q.regions
                if r.region == region
                for s in r.samples
            ]
            accepted = [s for s in samples if s.answer_class in ACCEPTED]
            refusals = sum(s.answer_class == REFUSAL for s in accepted)
            row = analysis_pb2.RegionModelStats(
                region=region,
                model=model,
                answered_cells=len(accepted),
                refusals=refusals,
                refusal_rate=round(refusals / len(accepted), DIGITS)
                if accepted
                else 0.0,
                technical_failures=sum(
                    s.answer_class == TECHNICAL_FAILURE for s in samples
                ),
            )
            similarity = mean(
                p.similarity
                for q in of_model
                for p in q.pairs
                if region in (p.region_a, p.region_b)
            )
            if similarity is not None:
                row.mean_similarity_to_others = round(similarity, DIGITS)
            stats.append(row)
    return stats
