"""Typed names for the beacon.v1 enum values used across the code."""

from __future__ import annotations

from typing import TypeAlias

from beacon.v1 import analysis_pb2, job_pb2, receipt_pb2

JobStatus: TypeAlias = job_pb2.JobStatus.ValueType
CellStatus: TypeAlias = job_pb2.CellStatus.ValueType
Classification: TypeAlias = receipt_pb2.Classification.ValueType
AttemptResult: TypeAlias = receipt_pb2.AttemptResult.ValueType
AnswerClass: TypeAlias = analysis_pb2.AnswerClass.ValueType
