"""The learning-rate schedule: a pure function of the step, set on the optimizer at every step."""

from __future__ import annotations

import math

from vqstudio.config import TrainConfig


def learning_rate(train: TrainConfig, base_lr: float, step: int) -> float:
    """The learning rate of step ``step`` (0-based): linear warm-up, then constant, cosine (to 0
    at ``train.total_steps``) or exponential (``train.lr_gamma`` per step) from ``base_lr``."""
    lr = base_lr
    if train.warmup_steps and step < train.warmup_steps:
        lr *= (step + 1) / train.warmup_steps
    if train.schedule == "cosine":
        progress = min(1.0, step / max(1, train.total_steps))
        lr *= 0.5 * (1 + math.cos(math.pi * progress))
    elif train.schedule == "exponential":
        lr *= train.lr_gamma**step
    return lr
