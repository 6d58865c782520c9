"""What the coordinator reports about the cells of a job as they end."""

from __future__ import annotations

import logging

from beacon.cells import Cell
from beacon.v1 import job_pb2
from coordinator.outcomes import Verdict

logger = logging.getLogger(__name__)


def cell_final(cell: Cell, verdict: Verdict) -> None:
    logger.debug(
        "cell final cell_id=%s region=%s model=%s question=%s status=%s",
        cell.cell_id,
        cell.region,
        cell.model,
        cell.question_id,
        job_pb2.CellStatus.Name(verdict.status),
    )
