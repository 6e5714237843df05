"""What one training step reports, and the ``metrics.csv`` row made from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vqstudio.train.runfolder import VALIDATION_COLUMN, weight_column


@dataclass
class StepReport:
    """What one step did. ``terms`` is filled on logging steps (every ``train.log_every``) and on
    skipped steps; ``events`` and ``results`` are everything produced since the last report,
    each handed out once."""

    step: int  # the global step count after this step (1 after the first)
    wall_time: float
    elapsed: float  # seconds spent training in this run, across resumes
    terms: dict[str, float]
    weights: dict[str, float]
    lr: float
    grad_norm: float
    steps_per_second: float
    audio_seconds_per_second: float
    skipped: bool = False  # the step was non-finite and changed nothing
    codebook: dict[str, np.ndarray] | None = None  # usage [L, K], entropy [L], dead_fraction [L]
    grad_shares: dict[str, float] | None = None
    validation: dict[str, float] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)  # e.g. reconstructions


def metrics_row(report: StepReport) -> dict[str, Any]:
    """The report as one ``metrics.csv`` row keyed by column name."""
    row: dict[str, Any] = {
        "step": report.step,
        "wall_time": f"{report.wall_time:.3f}",
        "elapsed": report.elapsed,
        "lr": report.lr,
        "grad_norm": report.grad_norm,
    }
    row.update(report.terms)
    row.update({weight_column(k): v for k, v in report.weights.items()})
    if report.validation:
        row[VALIDATION_COLUMN] = report.validation["mel_distance"]
    return row
