"""The clip the audition panel plays: its original samples, its latest reconstruction, and how an
audio file becomes one (the first ~20 s, read at the model's rate). No Qt here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqstudio.app.playback_engine import fit_length
from vqstudio.audio.io import READ_SUFFIXES, audio_info, read_audio, resample
from vqstudio.errors import UserError
from vqstudio.resources import demo_dir

MAX_CLIP_S = 20.0
MAX_LISTED_FILES = 500  # a huge corpus lists its first files; any file can still be opened


@dataclass
class Clip:
    """The clip being auditioned: ``original`` [T] float32 at ``rate``; ``reconstruction`` [T]
    at the same rate once it is known (for the view; the player holds its own copies)."""

    name: str
    path: str | None  # None for the training probe
    original: np.ndarray
    rate: int
    reconstruction: np.ndarray | None = None
    about: str = ""  # where the reconstruction came from: "step 1200, 2 of 4 levels"
    # other sources at ``rate``, fitted to the original (checkpoints, denoised): name -> [T]
    sources: dict = field(default_factory=dict)

    @property
    def is_probe(self) -> bool:
        return self.path is None

    @property
    def residual(self) -> np.ndarray | None:
        if self.reconstruction is None:
            return None
        return self.original - self.reconstruction

    def source(self, name: str) -> np.ndarray | None:
        """The samples of source ``name`` as the view shows them (None: not known yet)."""
        if name in ("original", "reconstruction", "residual"):
            return getattr(self, name)
        return self.sources.get(name)

    def fitted(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """``audio`` [T] at ``rate`` as a source of this clip: at its rate, as long as the
        original."""
        if rate != self.rate:
            audio = resample(audio, rate, self.rate)
        return np.array(fit_length(np.asarray(audio, dtype=np.float32), self.original.shape[0]))

    @property
    def seconds(self) -> float:
        return self.original.shape[0] / self.rate


def read_clip(path: str | Path, rate: int | None) -> tuple[Clip, str]:
    """The first MAX_CLIP_S seconds of an audio file at ``rate`` (None: the file's own), and a
    note when the file was cut ("" otherwise). Raises :class:`UserError` for a file that cannot
    be used, whatever the reason."""
    path = str(path)
    try:
        info = audio_info(path)
        wave = read_audio(path, rate, duration=min(MAX_CLIP_S, info.duration))
    except UserError:
        raise
    except Exception as error:  # an unreadable file must never take the window down
        raise UserError(f"{path}: could not be read ({type(error).__name__}: {error})",
                        "try converting it to WAV or FLAC") from None
    clip = Clip(Path(path).name, path, np.ascontiguousarray(wave, dtype=np.float32),
                int(rate or info.sample_rate))
    note = ""
    if info.duration > MAX_CLIP_S + 0.05:
        note = f"Using the first {MAX_CLIP_S:.0f} s of {clip.name} (it is {info.duration:.1f} s long)"
    return clip, note


def list_audio(folder: Path) -> list[str]:
    """Audio files under ``folder`` by path (hidden ones skipped), at most MAX_LISTED_FILES;
    nothing if it cannot be read (or ``folder`` is None)."""
    found: list[str] = []
    if folder is None:
        return found
    try:
        for path in sorted(folder.rglob("*")):
            parts = path.relative_to(folder).parts
            if path.suffix.lower() in READ_SUFFIXES and not any(p.startswith(".") for p in parts):
                found.append(str(path))
                if len(found) >= MAX_LISTED_FILES:
                    break
    except OSError:
        pass
    return found



def data_folder(info: dict) -> Path | None:
    """The run's audio folder (``info["data"]``; the demo corpus by default); None if that is
    missing."""
    if info.get("data"):
        return Path(info["data"])
    try:
        return demo_dir()
    except UserError:  # a damaged install: no demo files to list, the rest works
        return None
