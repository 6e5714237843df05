"""The training corpus: a folder scanned for usable audio (or a manifest, or a prepared dataset),
with its skip report and its train/validation split.

Scanning decodes every file once (block by block) so that bad files (not audio, truncated, NaN)
are skipped and reported up front instead of stopping a training run hours later. Files shorter
than a segment are kept and padded with silence at the end; the report lists them. What a scan
found is kept in the corpus index (:mod:`vqstudio.audio.corpus_index`), so the next start only
checks files that are new or changed.

``scan_corpus`` takes any of the three sources: a folder (or one audio file), a manifest
(:mod:`vqstudio.audio.manifest`: a list of paths, JSONL, or Lhotse recordings or cuts), or a
folder made by ``vqstudio prepare`` (:mod:`vqstudio.audio.prepared`). The segment sampler lives in
:mod:`vqstudio.audio.sampler`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from vqstudio.audio.corpus_index import CorpusIndex, paused_gc, shown
from vqstudio.audio.io import READ_SUFFIXES, AudioInfo, check_audio
from vqstudio.audio.sampler import DEFAULT_CACHE_BYTES, SEED_MASK, SegmentSampler
from vqstudio.errors import AudioFileError, ConfigError, NoAudioError

__all__ = ["DEFAULT_CACHE_BYTES", "Corpus", "SegmentSampler", "scan_corpus"]
_SEED_MASK = SEED_MASK


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
    notes: list[str] = field(default_factory=list)  # about the scan itself (the index)
    prepared: Any = None  # the PreparedSet the samples come from, when made by `vqstudio prepare`

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
            return shown(Path(path).relative_to(self.folder).as_posix() or Path(path).name)
        except ValueError:
            return shown(path)

    def report(self, segment_seconds: float | None = None) -> str:
        """A readable summary: files used and their total duration, files skipped and why, and
        (given the segment length) the files that are shorter and get padded with silence."""
        lines = [
            f"{self.role.capitalize()} from {shown(self.folder)}: {len(self.files)} audio file"
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
        lines += self.notes
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
                replace(self, files=files, spans=[(cut, stop)], skipped=[], notes=[],
                        role="validation"),
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
            notes=self.notes if role == "training" else [],
            role=role,
        )


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    if whole < 60:
        return f"{seconds:.1f} s"
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def _audio_paths(folder: Path) -> list[str]:
    """Audio files under ``folder`` (any depth, following links, each real folder once so a link
    loop ends), sorted by relative path. Hidden files and folders are ignored: they are editor,
    OS or our own temporary files. Plain strings: a 100,000-file listing stays well under a
    second."""
    found = []
    seen = set()
    top = os.fspath(folder)
    for root, dirs, names in os.walk(top, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:  # a link cycle
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            # no dot: name[-1:], never a suffix
            if not name.startswith(".") and name[name.rfind(".") :].lower() in READ_SUFFIXES:
                found.append(os.path.join(root, name))
    cut = len(top.rstrip(os.sep)) + 1
    return sorted(found, key=lambda p: p[cut:].replace(os.sep, "/"))


def check_files(
    paths: list[str],
    index: CorpusIndex,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[AudioInfo], list[tuple[str, str]]]:
    """``(usable, skipped)``: each path checked, or taken from ``index`` when unchanged. The
    usable list keeps the order of ``paths``; skipped entries are ``(path, reason)``."""
    files, skipped = [], []
    for done, path in enumerate(paths, start=1):
        info, stat = index.lookup(path)
        if info is None:
            try:
                info = check_audio(path)
            except AudioFileError as error:
                index.forget()
                skipped.append((path, error.reason + (f"; {error.fix}" if error.fix else "")))
            else:
                index.remember(path, stat, info)
        if info is not None:
            files.append(info)
        if progress is not None:
            progress(done, len(paths))
    index.save()
    return files, skipped


def nothing_usable(paths: int, where: str, skipped: list[tuple[str, str]]) -> NoAudioError:
    """The error for a source whose every file was skipped, naming the first few and why."""
    listed = "; ".join(f"{shown(os.path.basename(p))}: {r}" for p, r in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    error = NoAudioError(
        f"none of the {paths} audio files in {where} can be used — {listed}{more}",
        "fix or replace these files, or choose another folder",
    )
    error.skipped = skipped
    return error


SOURCE_HINT = ("a folder of audio files, one audio file, a manifest (.txt .list .tsv .jsonl .json, "
               "optionally .gz; Lhotse recordings or cuts) or a folder made by `vqstudio prepare`")


def source_kind(path: str | os.PathLike) -> str | None:
    """What :func:`scan_corpus` would read at ``path``: "prepared dataset", "manifest", "audio
    file" or "folder"; None for anything else (missing, or a file of another kind)."""
    from vqstudio.audio import manifest, prepared

    path = Path(path).expanduser()
    if prepared.is_prepared(path):
        return "prepared dataset"
    if manifest.is_manifest(path):
        return "manifest"
    if path.is_file():
        return "audio file" if path.suffix.lower() in READ_SUFFIXES else None
    return "folder" if path.is_dir() else None


def scan_corpus(
    folder: str | os.PathLike,
    sample_rate: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Corpus:
    """Find the audio under ``folder`` (.wav .flac .ogg .mp3 .aif .aiff, any case, any depth),
    check each file (decoding it once, unless the corpus index knows it unchanged) and keep the
    usable ones. ``folder`` may also be a single audio file, a manifest (.txt, .list, .jsonl,
    .jsonl.gz: see :mod:`vqstudio.audio.manifest`) or a folder made by ``vqstudio prepare``.
    ``progress(done, total)`` is called after each file.

    Raises NoAudioError when the source is missing or nothing usable is left.
    """
    with paused_gc():
        return _scan(Path(folder).expanduser(), sample_rate, progress)


def _scan(folder: Path, sample_rate: int, progress: Callable[[int, int], None] | None) -> Corpus:
    from vqstudio.audio import manifest, prepared

    kinds = " ".join(READ_SUFFIXES)
    if not folder.exists():
        raise NoAudioError(
            f"the audio folder {shown(folder)} does not exist",
            "choose a folder that holds audio files, or leave data.path empty for the demo corpus",
        )
    if prepared.is_prepared(folder):
        return prepared.PreparedSet.open(folder).corpus(sample_rate)
    if manifest.is_manifest(folder):
        return manifest.read_corpus(folder, sample_rate, progress=progress)
    if folder.is_file():
        paths, root = [os.fspath(folder)], folder.parent
    else:
        paths, root = _audio_paths(folder), folder
    if not paths:
        raise NoAudioError(
            f"no audio files in {shown(folder)} or its subfolders (looked for {kinds})",
            "put audio files there, or choose another folder",
        )
    index = CorpusIndex.for_source(folder)
    files, skipped = check_files(paths, index, progress)
    if not files:
        raise nothing_usable(len(paths), shown(folder), skipped)
    return Corpus(
        folder=str(root), sample_rate=int(sample_rate), files=files, skipped=skipped,
        notes=[*index.notes, index.summary()],
    )
