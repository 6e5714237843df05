"""The run-info dictionary: what a client shows about a run (its sizes, terms, live settings).

One shape for a run that trains (:func:`trainer_info`, sent by the GUI worker when a run starts)
and for one only known from its configuration (:func:`config_info`, a run folder opened from disk
or a run not started yet), so the panels read the same keys either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from vqstudio.config import Config
from vqstudio.train.settings import live_values


def config_info(config: Config, run_dir: str | Path | None, step: int = 0,
                weights: dict[str, float] | None = None) -> dict[str, Any]:
    """What a configuration tells about a run (no device yet)."""
    return {
        "device": "",
        "preset": config.preset,
        "run_dir": str(run_dir) if run_dir is not None else None,
        "step": step,
        "weights": dict(weights if weights is not None else config.loss.resolved_weights()),
        "term_names": config.loss.term_names(),
        "sample_rate": config.model.sample_rate,
        "rvq_levels": config.model.rvq_levels,
        "codebook_size": config.model.codebook_size,
        "lr": config.train.lr,
        "balancer": config.loss.balancer,
        "quantizer_dropout": config.model.quantizer_dropout,
        "data": config.data.path,
        "live": live_values(config),  # every live setting but the weights (train/settings.py)
        "audio_seconds_per_step": config.data.batch_size * config.data.segment_seconds,
    }


def trainer_info(trainer) -> dict[str, Any]:
    """:func:`config_info` with what the trainer knows now: its device and thread count, the
    current step, elapsed time and live settings, and the corpus report."""
    info = config_info(trainer.config, trainer.run.path if trainer.run is not None else None,
                       trainer.step_count, trainer.weights)
    info.update({
        "device": str(trainer.device),
        "threads": torch.get_num_threads() if trainer.device.type == "cpu" else None,
        "elapsed": trainer.elapsed,
        "lr": trainer.base_lr,
        "balancer": trainer.balancer_mode,
        "quantizer_dropout": float(trainer.model.quantizer.dropout),
        "corpus_report": trainer.data.report,
        "live": {**info["live"], "lr": trainer.base_lr, "balancer": trainer.balancer_mode,
                 "quantizer_dropout": float(trainer.model.quantizer.dropout)},
        "audio_seconds_per_step": trainer.data.audio_seconds_per_step(),  # over all ranks
    })
    return info
