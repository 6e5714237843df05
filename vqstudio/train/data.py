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
from vqstudio.audio.prefetch import BatchFeed
from vqstudio.config import Config
from vqstudio.resources import demo_dir

VALIDATION_SEGMENTS = 8


class TrainingData:
    """A configuration's corpus, scanned once: ``train`` and ``validation`` parts, their samplers."""

    def __init__(self, config: Config, rank: int = 0, world: int = 1):
        sr = config.model.sample_rate
        folder = Path(config.data.path) if config.data.path else demo_dir()
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
        self.workers = config.data.workers
        self._feed: BatchFeed | None = None  # started by the first batch, not by opening a run

    def batch(self, step: int) -> torch.Tensor:
        """The training batch of global step ``step`` for this rank: ``[B, 1, T]`` float32, CPU,
        cut ahead of time by the ``data.workers`` background processes."""
        if self._feed is None:
            self._feed = BatchFeed(self._sampler, self.batch_size, rank=self.rank,
                                   world=self.world, workers=self.workers)
        return self._feed.batch(step)

    def unreadable_files(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of files that could not be read since the last call (each once);
        their segments were taken from other files and training went on."""
        return self._feed.take_failures() if self._feed is not None else []

    def close(self) -> None:
        """End the background workers, if any."""
        if self._feed is not None:
            self._feed.close()
            self._feed = None

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

    def probe_clip(self, seconds: float):
        """``(wave [T] float32 at the model's rate, file path)``: the first ``seconds`` of the
        probe source (:meth:`probe_source`), or None for an empty corpus. The training app and a
        follower of a run trained elsewhere hear the same clip. A :class:`UserError` if the file
        cannot be read."""
        from vqstudio.audio.io import read_audio

        source = self.probe_source()
        if source is None:
            return None
        info, (start, stop) = source
        seconds = min(seconds, (stop - start) / info.sample_rate)
        wave = read_audio(info.path, self.sample_rate, start=start / info.sample_rate, duration=seconds)
        return wave, str(info.path)
