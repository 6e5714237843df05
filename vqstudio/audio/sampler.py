"""The segment sampler: fixed-length mono training segments cut from a corpus, as a pure function
of ``(seed, step, rank)``, so a run resumed at step ``s`` draws exactly the batches the
uninterrupted run would have, with no sampler state to save.

Where the samples come from is the corpus's business: files decoded and resampled on use (with a
bounded in-memory cache), or a prepared dataset's memory-mapped shards, which hold the same samples
already resampled (:mod:`vqstudio.audio.prepared`). The picks depend only on the spans, so both
give the same batches.

A file that cannot be read when it is needed (deleted, truncated or locked since the scan) does
not stop training: its segment is taken from the next file in corpus order that reads, at the same
relative position, and the file is listed in :attr:`SegmentSampler.failures`. The replacement
depends only on which files fail, never on what this process has seen before, so every worker
process draws the same batch.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from vqstudio.audio.corpus_index import shown
from vqstudio.audio.io import read_samples, resampled_length
from vqstudio.errors import AudioFileError, ConfigError, NoAudioError

DEFAULT_CACHE_BYTES = 1 << 30
SEED_MASK = (1 << 63) - 1


class SegmentSampler:
    """Random fixed-length mono segments from a corpus, at the model's rate.

    A file is picked with probability proportional to its duration, then a start uniformly
    within it; a file shorter than the segment is used whole and padded with silence at the end.
    Decoded, resampled audio is kept in memory for as many files as fit in ``cache_bytes``
    (chosen in corpus order, so the choice never depends on history); the rest are read by
    frame range on each use. A corpus made from a prepared dataset is read from its shards and
    never cached (the shards are memory-mapped: the page cache is the cache).
    """

    def __init__(
        self,
        corpus,
        sample_rate: int,
        segment_samples: int,
        seed: int,
        *,
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ):
        if segment_samples < 1:
            raise ConfigError(
                f"segments of {segment_samples} samples", "use a positive segment length"
            )
        self.corpus = corpus
        self.sample_rate = int(sample_rate)
        self.segment_samples = int(segment_samples)
        self.seed = int(seed) & SEED_MASK
        self.prepared = getattr(corpus, "prepared", None)
        if self.prepared is not None:
            self.prepared.check_rate(self.sample_rate)
        # each file's span in samples at the sampler's rate: (first, stop)
        self.spans: list[tuple[int, int]] = []
        for info, (start, stop) in zip(corpus.files, corpus.spans):
            total = resampled_length(info.frames, info.sample_rate, self.sample_rate)
            # round the start up and an inner end down, so a time split never shares a sample
            first = min(resampled_length(start, info.sample_rate, self.sample_rate), total - 1)
            last = total if stop >= info.frames else stop * self.sample_rate // info.sample_rate
            self.spans.append((first, max(first + 1, last)))
        lengths = np.array([stop - first for first, stop in self.spans], dtype=np.float64)
        self._weights = lengths / lengths.sum()
        self._lengths = lengths
        self._plan_cache(cache_bytes)
        self._cache: dict[int, np.ndarray] = {}
        self._bad: dict[int, str] = {}
        self.failures: list[tuple[str, str]] = []  # (path, reason), in the order found

    def _plan_cache(self, cache_bytes: int) -> None:
        """Choose the files kept in memory: the first ones, in corpus order, that fit."""
        self.cache_bytes = int(cache_bytes)
        self._cacheable = set()
        planned = 0
        if self.prepared is None:
            for i, length in enumerate(self._lengths):
                if planned + 4 * length <= cache_bytes:
                    self._cacheable.add(i)
                    planned += 4 * int(length)

    def share_cache(self, processes: int) -> None:
        """Give this copy a ``1 / processes`` share of the cache budget, for one of that many
        worker processes. Which files are cached never changes a segment's samples (a range
        read equals the slice of the whole file), only how fast it is cut."""
        self._cache = {}
        self._plan_cache(self.cache_bytes // max(1, processes))

    def __getstate__(self) -> dict:
        # a worker process starts with an empty cache of its own
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    @property
    def decodes_on_use(self) -> bool:
        """Whether some segments are decoded and resampled when drawn (files that do not fit the
        cache); False for a prepared dataset or a corpus that fits in memory, where cutting a
        batch is a copy."""
        return self.prepared is None and len(self._cacheable) < len(self.spans)

    @property
    def cached_bytes(self) -> int:
        """Bytes of decoded audio held in memory now."""
        return sum(a.nbytes for a in self._cache.values())

    def _span_audio(self, index: int) -> np.ndarray | None:
        if index not in self._cacheable:
            return None
        if index not in self._cache:
            first, stop = self.spans[index]
            info = self.corpus.files[index]
            self._cache[index] = read_samples(
                info.path, self.sample_rate, first, stop - first, info=info
            )
        return self._cache[index]

    def _read(self, index: int, offset: int) -> np.ndarray:
        """Up to ``segment_samples`` samples from ``offset`` into file ``index``'s span."""
        first, stop = self.spans[index]
        n = min(self.segment_samples, stop - first - offset)
        if self.prepared is not None:
            return self.prepared.samples(self.corpus.files[index].path, first + offset, n)
        cached = self._span_audio(index)
        if cached is not None:
            return cached[offset : offset + n]
        info = self.corpus.files[index]
        return read_samples(info.path, self.sample_rate, first + offset, n, info=info)

    def _segment(self, index: int, offset: int) -> np.ndarray:
        """``[segment_samples]`` starting ``offset`` samples into file ``index``'s span."""
        piece = self._read(index, offset)
        if len(piece) == self.segment_samples:
            return piece
        out = np.zeros(self.segment_samples, dtype=np.float32)
        out[: len(piece)] = piece
        return out

    def _readable_segment(self, index: int, where: float) -> np.ndarray:
        """The segment at relative position ``where`` of file ``index``, or of the next file in
        corpus order that can still be read."""
        n = len(self.spans)
        for k in range(n):
            i = (index + k) % n
            if i in self._bad:
                continue
            try:
                return self._segment(i, int(where * self._room(i)))
            except AudioFileError as error:
                reason = error.reason + (f"; {error.fix}" if error.fix else "")
                if not os.path.exists(self.corpus.files[i].path):
                    reason = "does not exist any more (moved or deleted since the scan)"
                self._bad[i] = reason
                self._cache.pop(i, None)
                self.failures.append((shown(self.corpus.files[i].path), reason))
        raise NoAudioError(
            "none of the corpus files can be read any more (they were moved, deleted or damaged "
            "since the scan)",
            "check that the data folder is still there, then resume the run",
        )

    def _room(self, index: int) -> int:
        """How many start offsets a segment has in file ``index`` (1 when the file is short)."""
        first, stop = self.spans[index]
        return max(1, stop - first - self.segment_samples + 1)

    def batch(self, step: int, batch_size: int, rank: int = 0, world: int = 1) -> torch.Tensor:
        """``[batch_size, 1, segment_samples]`` float32, a function of (seed, step, rank) only.
        Each rank of a ``world``-process job gets its own independent draw."""
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is outside a world of {world}")
        rng = np.random.default_rng([self.seed, int(step), int(rank)])
        picks = rng.choice(len(self.spans), size=batch_size, p=self._weights)
        where = rng.random(batch_size)
        segments = [self._readable_segment(int(i), float(u)) for i, u in zip(picks, where)]
        return torch.from_numpy(np.stack(segments)).unsqueeze(1)

    def take_failures(self) -> list[tuple[str, str]]:
        """The files found unreadable since the last call, as ``(path, reason)``."""
        found, self.failures = self.failures, []
        return found

    def fixed_segments(self, n: int) -> torch.Tensor:
        """``[n, 1, segment_samples]``: segments centred on ``n`` points spread evenly over the
        whole corpus (its files laid end to end) — the same every call, whatever the seed."""
        lengths = np.array([stop - first for first, stop in self.spans])
        ends = np.cumsum(lengths)
        segments = []
        for k in range(n):
            point = int((k + 0.5) * ends[-1] / n)
            index = int(np.searchsorted(ends, point, side="right"))
            local = point - (ends[index] - lengths[index])
            offset = min(max(0, local - self.segment_samples // 2), self._room(index) - 1)
            segments.append(self._segment(index, offset))
        return torch.from_numpy(np.stack(segments)).unsqueeze(1)
