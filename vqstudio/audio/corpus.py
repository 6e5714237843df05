"""The training corpus: a folder scanned for usable audio, a train/validation split, and the
segment sampler that cuts fixed-length training batches from it.

Scanning decodes every file once (block by block) so that bad files (not audio, truncated, NaN)
are skipped and reported up front instead of stopping a training run hours later. Files shorter
than a segment are kept and padded with silence at the end; the report lists them.

The sampler is a pure function of (seed, step, rank): a run resumed at step ``s`` draws exactly the
batches the uninterrupted run would have, with no sampler state to save.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from vqstudio.audio.io import READ_SUFFIXES, AudioInfo, check_audio, read_samples, resampled_length
from vqstudio.errors import AudioFileError, ConfigError, NoAudioError

DEFAULT_CACHE_BYTES = 1 << 30
_SEED_MASK = (1 << 63) - 1


@dataclass
class Corpus:
    """Usable audio files and the ones skipped, with why.

    ``spans[i]`` is the part of ``files[i]`` in use, as native frames ``(start, stop)``: the whole
    file, except when a one-file corpus is split by time into train and validation.
    """

    folder: str
    sample_rate: int  # the model's rate; files at other rates are resampled to it
    files: list[AudioInfo]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    role: str = "corpus"  # "corpus", "training" or "validation"

    def __post_init__(self) -> None:
        if not self.spans:
            self.spans = [(0, info.frames) for info in self.files]
        if len(self.spans) != len(self.files):
            raise ValueError("Corpus.spans must match Corpus.files one to one")

    def span_seconds(self, index: int) -> float:
        """Duration in seconds of the part of file ``index`` in use."""
        start, stop = self.spans[index]
        return (stop - start) / self.files[index].sample_rate

    @property
    def duration(self) -> float:
        """Seconds of audio in use, over all files."""
        return sum(self.span_seconds(i) for i in range(len(self.files)))

    def _name(self, path: str) -> str:
        try:
            return Path(path).relative_to(self.folder).as_posix() or Path(path).name
        except ValueError:
            return path

    def report(self, segment_seconds: float | None = None) -> str:
        """A readable summary: files used and their total duration, files skipped and why, and
        (given the segment length) the files that are shorter and get padded with silence."""
        lines = [
            f"{self.role.capitalize()} from {self.folder}: {len(self.files)} audio file"
            f"{'s' if len(self.files) != 1 else ''}, {_clock(self.duration)} in all, "
            f"used at {self.sample_rate} Hz."
        ]
        for i, info in enumerate(self.files):
            start, stop = self.spans[i]
            if (start, stop) != (0, info.frames):
                lines.append(
                    f"  uses {self._name(info.path)} from {start / info.sample_rate:.2f} s to "
                    f"{stop / info.sample_rate:.2f} s only (a single file is split by time)"
                )
        low = [info for info in self.files if info.sample_rate < self.sample_rate]
        if low:
            lines.append(
                f"{len(low)} file{'s are' if len(low) > 1 else ' is'} below {self.sample_rate} Hz "
                "and will be upsampled (they hold nothing above half their own rate):"
            )
            lines += [f"  {self._name(info.path)} ({info.sample_rate} Hz)" for info in low]
        if segment_seconds:
            short = [i for i in range(len(self.files)) if self.span_seconds(i) < segment_seconds]
            if short:
                lines.append(
                    f"{len(short)} file{'s are' if len(short) > 1 else ' is'} shorter than one "
                    f"{segment_seconds:g} s segment and will be padded with silence:"
                )
                lines += [
                    f"  {self._name(self.files[i].path)} ({self.span_seconds(i):.2f} s)"
                    for i in short
                ]
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)} file{'s' if len(self.skipped) > 1 else ''}:")
            lines += [f"  {self._name(path)}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)

    def split(self, val_fraction: float, seed: int) -> tuple[Corpus, Corpus]:
        """(training, validation), disjoint and both non-empty, the same for the same seed.

        Whole files are held back: ``round(n * val_fraction)`` of them, at least one, and at
        least one is left for training. A one-file corpus is split by time instead: the last
        ``val_fraction`` of it validates.
        """
        if not 0.0 < val_fraction < 1.0:
            raise ConfigError(
                f"data.val_fraction is {val_fraction}",
                "set it between 0 and 1 (0.1 holds back a tenth)",
            )
        n = len(self.files)
        if n == 1:
            start, stop = self.spans[0]
            cut = start + int((stop - start) * (1.0 - val_fraction))
            cut = min(max(cut, start + 1), stop - 1)
            if not start < cut < stop:
                raise NoAudioError(
                    f"{self.files[0].path} is too short to split into training and validation",
                    "add more audio to the folder",
                )
            files = list(self.files)
            return (
                replace(self, files=files, spans=[(start, cut)], role="training"),
                replace(self, files=files, spans=[(cut, stop)], skipped=[], role="validation"),
            )
        n_val = min(n - 1, max(1, round(n * val_fraction)))
        order = np.random.default_rng(seed & _SEED_MASK).permutation(n)
        held = set(order[:n_val].tolist())
        train = [i for i in range(n) if i not in held]
        val = sorted(held)
        return self._subset(train, "training"), self._subset(val, "validation")

    def _subset(self, indices: list[int], role: str) -> Corpus:
        return replace(
            self,
            files=[self.files[i] for i in indices],
            spans=[self.spans[i] for i in indices],
            skipped=self.skipped if role == "training" else [],
            role=role,
        )


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    if whole < 60:
        return f"{seconds:.1f} s"
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _audio_paths(folder: Path) -> list[Path]:
    """Audio files under ``folder`` (any depth, following links once), sorted by relative path.
    Hidden files and folders are ignored: they are editor, OS or our own temporary files."""
    found = []
    seen = set()
    for root, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link cycle
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in READ_SUFFIXES:
                found.append(Path(root) / name)
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def scan_corpus(
    folder: str | os.PathLike,
    sample_rate: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Corpus:
    """Find the audio under ``folder`` (.wav .flac .ogg .mp3 .aif .aiff, any case, any depth),
    decode each file once to check it, and keep the usable ones; a single audio file may be
    given instead of a folder. ``progress(done, total)`` is called after each file.

    Raises NoAudioError when the folder is missing or nothing usable is left.
    """
    folder = Path(folder).expanduser()
    kinds = " ".join(READ_SUFFIXES)
    if not folder.exists():
        raise NoAudioError(
            f"the audio folder {folder} does not exist",
            "choose a folder that holds audio files, or leave data.path empty for the demo corpus",
        )
    if folder.is_file():
        paths, root = [folder], folder.parent
    else:
        paths, root = _audio_paths(folder), folder
    if not paths:
        raise NoAudioError(
            f"no audio files in {folder} or its subfolders (looked for {kinds})",
            "put audio files there, or choose another folder",
        )
    files, skipped = [], []
    for done, path in enumerate(paths, start=1):
        try:
            files.append(check_audio(path))
        except AudioFileError as error:
            reason = error.reason + (f"; {error.fix}" if error.fix else "")
            skipped.append((str(path), reason))
        if progress is not None:
            progress(done, len(paths))
    if not files:
        shown = "; ".join(f"{Path(p).name}: {r}" for p, r in skipped[:3])
        more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
        error = NoAudioError(
            f"none of the {len(paths)} audio files in {folder} can be used — {shown}{more}",
            "fix or replace these files, or choose another folder",
        )
        error.skipped = skipped
        raise error
    return Corpus(folder=str(root), sample_rate=int(sample_rate), files=files, skipped=skipped)


class SegmentSampler:
    """Random fixed-length mono segments from a corpus, at the model's rate.

    A file is picked with probability proportional to its duration, then a start uniformly
    within it; a file shorter than the segment is used whole and padded with silence at the end.
    Decoded, resampled audio is kept in memory for as many files as fit in ``cache_bytes``
    (chosen in corpus order, so the choice never depends on history); the rest are read by
    frame range on each use.
    """

    def __init__(
        self,
        corpus: Corpus,
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
        self.seed = int(seed) & _SEED_MASK
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
        self._cacheable = set()
        planned = 0
        for i, length in enumerate(lengths):
            if planned + 4 * length <= cache_bytes:
                self._cacheable.add(i)
                planned += 4 * int(length)
        self._cache: dict[int, np.ndarray] = {}

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

    def _segment(self, index: int, offset: int) -> np.ndarray:
        """``[segment_samples]`` starting ``offset`` samples into file ``index``'s span."""
        first, stop = self.spans[index]
        n = min(self.segment_samples, stop - first - offset)
        cached = self._span_audio(index)
        if cached is not None:
            piece = cached[offset : offset + n]
        else:
            info = self.corpus.files[index]
            piece = read_samples(info.path, self.sample_rate, first + offset, n, info=info)
        if len(piece) == self.segment_samples:
            return piece
        out = np.zeros(self.segment_samples, dtype=np.float32)
        out[: len(piece)] = piece
        return out

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
        segments = [
            self._segment(int(i), int(u * self._room(int(i)))) for i, u in zip(picks, where)
        ]
        return torch.from_numpy(np.stack(segments)).unsqueeze(1)

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
