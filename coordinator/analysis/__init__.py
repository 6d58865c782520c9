"""Cross-region comparison of a JobResult: per (model, question), per region
and model, and per job, computed from accepted outcomes only."""

from coordinator.analysis.build import analyze_result
from coordinator.analysis.thresholds import AnalysisThresholds

__all__ = ["AnalysisThresholds", "analyze_result"]
