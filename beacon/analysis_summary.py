"""The analysis of a result as a few lines of text for the terminal."""

from __future__ import annotations

from google.protobuf.message import Message

from beacon.v1 import analysis_pb2, job_pb2

MAX_LISTED_FLAGS = 10


def _number(message: Message, name: str) -> str:
    return f"{getattr(message, name):.2f}" if message.HasField(name) else "n/a"


def analysis_lines(result: job_pb2.JobResult) -> list[str]:
    """Risk and its reasons, the job's numbers and the flags, worst first."""
    if not result.HasField("analysis"):
        return []
    a = result.analysis
    risk = analysis_pb2.RiskLevel.Name(a.risk).removeprefix("RISK_LEVEL_")
    lines = [f"analysis: risk {risk}"]
    lines += [f"  because {reason}" for reason in a.risk_reasons]
    lines.append(
        f"  consistency {_number(a, 'consistency')}, divergence {a.divergence:.2f} "
        f"({a.compared_questions} (model, question) compared), variation within "
        f"regions {_number(a, 'within_region_variation')}, between regions "
        f"{_number(a, 'between_region_variation')}; {a.accepted_cells} of "
        f"{a.total_cells} cells accepted; similarity {a.similarity_method}"
    )
    flags = [
        f"{f.model}/{f.question_id}: {f.message}" for q in a.questions for f in q.flags
    ]
    flags += [f.message for f in a.flags]
    lines += [f"  flag {flag}" for flag in flags[:MAX_LISTED_FLAGS]]
    if len(flags) > MAX_LISTED_FLAGS:
        lines.append(
            f"  ... and {len(flags) - MAX_LISTED_FLAGS} more flags "
            "(`beacon export JOB_ID --format html` shows them all)"
        )
    return lines
