"""The data a run trains on: the corpus split into training and validation, the batch of every
step, and the fixed validation segments.

:meth:`TrainingData.batch` is the one seam between the trainer and where its audio comes from: the
trainer asks it for step ``s`` and gets ``[B, 1, T]`` on the CPU. The batch is a pure function of
``(seed, step, rank)`` (see :class:`~vqstudio.audio.corpus.SegmentSampler`), so a resumed run draws
exactly the batches an uninterrupted one would have; anything that prepares batches ahead of time
(background workers, prepared shards) must keep that property.
"""

from __future__ import annotations

from pathlib import Path

import torch

from vqstudio.audio.corpus import Corpus, SegmentSampler, scan_corpus
from vqstudio.config import DEMO_DIR, Config

VALIDATION_SEGMENTS = 8


class TrainingData:
    """A configuration's corpus, scanned once: ``train`` and ``validation`` parts, their samplers."""

    def __init__(self, config: Config, rank: int = 0, world: int = 1):
        sr = config.model.sample_rate
        folder = Path(config.data.path) if config.data.path else DEMO_DIR
        corpus = scan_corpus(folder, sr)
        self.report: str = corpus.report(config.data.segment_seconds)
        self.skipped: list[tuple[str, str]] = list(corpus.skipped)
        self.train: Corpus
        self.validation: Corpus
        self.train, self.validation = corpus.split(config.data.val_fraction, config.data.seed)
        self.sample_rate = sr
        self.segment_samples = int(round(config.data.segment_seconds * sr))
        self.batch_size = config.data.batch_size
        self.rank, self.world = rank, world
        self._sampler = SegmentSampler(self.train, sr, self.segment_samples, config.data.seed)
        self._val_sampler = SegmentSampler(self.validation, sr, self.segment_samples, config.data.seed + 1)
        self._val_batch: torch.Tensor | None = None

    def batch(self, step: int) -> torch.Tensor:
        """The training batch of global step ``step`` for this rank: ``[B, 1, T]`` float32, CPU."""
        return self._sampler.batch(step, self.batch_size, self.rank, self.world)

    def validation_segments(self) -> torch.Tensor:
        """The same held-back segments every time: ``[VALIDATION_SEGMENTS, 1, T]``, CPU."""
        if self._val_batch is None:
            self._val_batch = self._val_sampler.fixed_segments(VALIDATION_SEGMENTS)
        return self._val_batch

    def audio_seconds_per_step(self) -> float:
        """Seconds of audio one step trains on, over all ranks."""
        return self.batch_size * self.segment_samples / self.sample_rate * self.world

    def probe_source(self):
        """``(AudioInfo, (start, stop) native frames)`` of the clip the GUI reconstructs as it
        trains: the first validation file (the first training file when nothing is held back),
        or None for an empty corpus."""
        corpus = self.validation if self.validation.files else self.train
        if not corpus.files:
            return None
        return corpus.files[0], corpus.spans[0]
