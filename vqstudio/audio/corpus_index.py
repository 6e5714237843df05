"""The corpus index: what the last scan of a data source found, kept so that the next start does
not decode every file again.

One small JSON file per data source (a folder or a manifest) in the user's cache folder
(``$VQSTUDIO_CACHE``, else ``$XDG_CACHE_HOME/vqstudio``, else ``~/.cache/vqstudio``), under
``corpus-index/``, named by a hash of the source's real path. An entry is keyed by the file's path
and trusted only while the file's size and modification time (ns) are unchanged and it is still
readable; anything else is checked again. Only usable files are remembered: a skipped file is
always checked again, so the skip report is exactly what a full scan would say today.

The index is a cache, never an authority: a file that is not valid JSON, was written by another
program or version, or describes another source is ignored with a note and rewritten. It is
written atomically, so a crash leaves the old index or the new one, never half of one.

Paths are kept as Python strings with undecodable bytes escaped (``os.fsdecode``); JSON stores the
escapes as ``\\udcXX`` and gives them back unchanged, so names that are not valid UTF-8 survive.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from vqstudio.atomic import atomic_path
from vqstudio.audio.io import AudioInfo

INDEX_FORMAT = "vqstudio-corpus-index"
# bump when check_audio's rules change, so older verdicts are not trusted
INDEX_VERSION = 1
_COLUMNS = ("path", "size", "mtime_ns", "sample_rate", "frames", "channels", "format")


def cache_dir() -> Path:
    """Where vqstudio keeps caches: ``$VQSTUDIO_CACHE``, ``$XDG_CACHE_HOME/vqstudio`` or
    ``~/.cache/vqstudio``."""
    own = os.environ.get("VQSTUDIO_CACHE")
    if own:
        return Path(own).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vqstudio"


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside: a scan builds a few hundred thousand small, lasting
    objects, for which the collector would run over the growing heap again and again (a third of
    a 100,000-file second start) while finding nothing to free."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def shown(path: str | os.PathLike) -> str:
    """``path`` as printable text: bytes that are not valid UTF-8 are written as ``\\xNN``, so a
    name can always be printed, logged and searched for."""
    raw = os.fsencode(path)
    return raw.decode("utf-8", "backslashreplace")


def _stamp(stat: os.stat_result) -> list[int]:
    return [int(stat.st_size), int(stat.st_mtime_ns)]


@dataclass
class CorpusIndex:
    """Known-good files of one source: ``path -> (size, mtime_ns, AudioInfo)``.

    ``notes`` says what happened to the stored index (missing, ignored and why); ``reused`` and
    ``checked`` count the files taken from it and decoded again during this scan.
    """

    source: str
    location: Path
    entries: dict[str, tuple[list[int], AudioInfo]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reused: int = 0
    checked: int = 0
    _fresh: dict[str, tuple[list[int], AudioInfo]] = field(default_factory=dict)

    @classmethod
    def for_source(cls, source: str | os.PathLike) -> CorpusIndex:
        """The index of ``source`` (its real path names it), loaded if there is a usable one."""
        real = os.path.realpath(source)
        digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:24]
        index = cls(source=real, location=cache_dir() / "corpus-index" / f"{digest}.json")
        index._load()
        return index

    def _load(self) -> None:
        if not self.location.exists():
            return
        try:
            data = json.loads(self.location.read_bytes())
            if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
                raise ValueError("it was not written by vqstudio")
            if data.get("version") != INDEX_VERSION:
                raise ValueError(f"it has version {data.get('version')!r}, not {INDEX_VERSION}")
            if data.get("source") != self.source:
                raise ValueError("it describes another folder")
            columns = [data["files"][name] for name in _COLUMNS]
            if len({len(c) for c in columns}) != 1:
                raise ValueError("its columns differ in length")
            entries = {}
            for path, size, mtime, rate, frames, channels, fmt in zip(*columns):
                info = AudioInfo(path, int(rate), int(frames), int(channels),
                                 int(frames) / int(rate), str(fmt))
                entries[path] = ([int(size), int(mtime)], info)
        except (OSError, ValueError, TypeError, KeyError, ZeroDivisionError) as error:
            self.notes.append(
                f"ignored the corpus index {self.location} ({error}); every file is checked again"
            )
            return
        self.entries = entries

    def lookup(self, path: str) -> tuple[AudioInfo | None, os.stat_result | None]:
        """``(info, stat)``: the remembered info when the file is unchanged and readable, else
        None (with its stat when it could be taken, to remember it after checking)."""
        try:
            stat = os.stat(path)
        except OSError:
            return None, None
        known = self.entries.get(path)
        if known is not None and known[0] == _stamp(stat) and os.access(path, os.R_OK):
            self._fresh[path] = known
            self.reused += 1
            return known[1], stat
        return None, stat

    def remember(self, path: str, stat: os.stat_result | None, info: AudioInfo) -> None:
        """Record a file that was just checked and found usable."""
        self.checked += 1
        if stat is not None:
            self._fresh[path] = (_stamp(stat), info)

    def forget(self) -> None:
        """Count a file that was checked and skipped (it is not remembered)."""
        self.checked += 1

    def save(self) -> None:
        """Write the entries seen in this scan (dropping removed files), if anything changed.
        A cache folder that cannot be written costs a note, never the run."""
        if self._fresh == self.entries:
            return
        data = {
            "format": INDEX_FORMAT,
            "version": INDEX_VERSION,
            "source": self.source,
            "files": {name: [] for name in _COLUMNS},  # columns: one list per field
        }
        columns = [data["files"][name] for name in _COLUMNS]
        for path, ((size, mtime), info) in self._fresh.items():
            for column, value in zip(columns, (path, size, mtime, info.sample_rate, info.frames,
                                               info.channels, info.format)):
                column.append(value)
        try:
            self.location.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.location) as tmp:
                Path(tmp).write_text(json.dumps(data, separators=(",", ":")), encoding="ascii")
        except OSError as error:
            self.notes.append(f"could not write the corpus index {self.location} ({error})")
            return
        self.entries = dict(self._fresh)

    def summary(self) -> str:
        """One line: how many files came from the index and how many were checked."""
        return (
            f"Corpus index: {self.reused} file{'s' if self.reused != 1 else ''} unchanged since "
            f"the last scan, {self.checked} checked ({self.location})."
        )
