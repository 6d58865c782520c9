"""Typed names for the beacon.v1 enum values used across the code."""

from __future__ import annotations

from typing import Final, TypeAlias

from beacon.v1 import analysis_pb2, job_pb2, receipt_pb2

JobStatus: TypeAlias = job_pb2.JobStatus.ValueType
CellStatus: TypeAlias = job_pb2.CellStatus.ValueType
Classification: TypeAlias = receipt_pb2.Classification.ValueType
AttemptResult: TypeAlias = receipt_pb2.AttemptResult.ValueType
AnswerClass: TypeAlias = analysis_pb2.AnswerClass.ValueType

# A job in one of these has every cell's final outcome; its result no longer
# changes.
FINISHED_JOBS: Final[frozenset[JobStatus]] = frozenset(
    {
        job_pb2.JOB_STATUS_COMPLETED,
        job_pb2.JOB_STATUS_CANCELLED,
        job_pb2.JOB_STATUS_TIMED_OUT,
    }
)
