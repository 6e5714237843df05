"""A corpus given as a list instead of a folder: a manifest of audio paths.

Three kinds are read, each optionally gzip-compressed (``.gz``):

- a text list (``.txt``, ``.list``, ``.tsv``): one path per line, optionally followed by a tab,
  an offset and a tab and a duration in seconds; blank lines and lines starting with ``#`` are
  ignored;
- JSON lines (``.jsonl``, ``.json`` holding one object per line): ``{"path": ..., "offset": s,
  "duration": s}`` (``audio_filepath`` is accepted for ``path``, as NeMo writes it);
- Lhotse recording and cut manifests (``recordings.jsonl.gz``, ``cuts.jsonl.gz``), recognised by
  their fields: a recording's ``sources`` (only ``file`` sources: URLs, commands and in-memory
  audio are named and skipped), a cut's embedded ``recording`` with its ``start`` and
  ``duration``. Several channels are mixed down to mono like any other file.

Relative paths are relative to the manifest's folder. Names are read as bytes and decoded as the
file system does (``os.fsdecode``), so a list of names that are not valid UTF-8 still works.

Why our own reader and not the ``lhotse`` package: the formats are a few documented JSON fields,
while lhotse pulls in a dozen packages and its own audio loading; the test suite uses lhotse to
write the manifests this reader must understand.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from vqstudio.audio.corpus_index import CorpusIndex, shown
from vqstudio.errors import NoAudioError, UserError

TEXT_SUFFIXES = (".txt", ".list", ".tsv")
JSON_SUFFIXES = (".jsonl", ".json")


@dataclass(frozen=True)
class Entry:
    """One line of a manifest: a file and the part of it in seconds (``duration`` None: to the
    end). ``line`` is where it was, for messages."""

    path: str
    offset: float = 0.0
    duration: float | None = None
    line: int = 0


def _suffixes(path: Path) -> list[str]:
    parts = [s.lower() for s in path.suffixes]
    return parts[:-1] if parts and parts[-1] == ".gz" else parts


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is a file named like a manifest (not an audio file)."""
    return path.is_file() and bool(_suffixes(path)) and (
        _suffixes(path)[-1] in TEXT_SUFFIXES + JSON_SUFFIXES
    )


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            for number, raw in enumerate(fh, start=1):
                raw = raw.rstrip(b"\r\n")
                if raw.strip() and not raw.lstrip().startswith(b"#"):
                    yield number, raw
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise UserError(
            f"the manifest {shown(path)} cannot be read ({error})",
            "check that it is complete (a .gz must be a whole gzip file)",
        ) from None


def _bad_line(path: Path, number: int, what: str) -> UserError:
    return UserError(
        f"line {number} of the manifest {shown(path)} {what}",
        "fix that line (see the manifest formats in README.md) or remove it",
    )


def _number(value, path: Path, number: int, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _bad_line(path, number, f"has {name} {value!r}, not a number of seconds >= 0")
    return float(value)


def _from_json(obj, path: Path, number: int) -> Entry | tuple[str, str]:
    """An Entry, or ``(name, reason)`` for an entry that names audio we cannot use."""
    if not isinstance(obj, dict):
        raise _bad_line(path, number, "is not a JSON object")
    if "recording" in obj and isinstance(obj["recording"], dict):  # a Lhotse cut
        recording = _from_json(obj["recording"], path, number)
        if not isinstance(recording, Entry):
            return recording
        start = _number(obj.get("start", 0.0), path, number, "start")
        duration = obj.get("duration")
        duration = None if duration is None else _number(duration, path, number, "duration")
        return Entry(recording.path, recording.offset + start, duration, number)
    if "sources" in obj:  # a Lhotse recording
        sources = obj["sources"]
        name = str(obj.get("id", f"line {number}"))
        if not isinstance(sources, list) or not sources:
            raise _bad_line(path, number, "is a Lhotse recording without sources")
        kinds = {s.get("type") for s in sources if isinstance(s, dict)}
        if kinds != {"file"}:
            return name, (
                f"its audio is a Lhotse {'/'.join(sorted(map(str, kinds)))} source; only files "
                "on disk are read"
            )
        if len(sources) > 1:
            return name, "its channels are in separate files, which is not supported"
        return Entry(str(sources[0].get("source", "")), 0.0, None, number)
    where = obj.get("path", obj.get("audio_filepath"))
    if not isinstance(where, str) or not where:
        raise _bad_line(path, number, 'has no "path"')
    offset = _number(obj.get("offset", 0.0), path, number, "offset")
    duration = obj.get("duration")
    duration = None if duration is None else _number(duration, path, number, "duration")
    return Entry(where, offset, duration, number)


def _from_text(raw: bytes, path: Path, number: int) -> Entry:
    fields = raw.split(b"\t")
    name = os.fsdecode(fields[0].strip() if len(fields) > 1 else fields[0])
    numbers = []
    for text in fields[1:3]:
        try:
            numbers.append(float(text))
        except ValueError:
            raise _bad_line(path, number, f"has {text!r} where seconds were expected") from None
    if any(n < 0 for n in numbers):
        raise _bad_line(path, number, "has a negative offset or duration")
    offset = numbers[0] if numbers else 0.0
    return Entry(name, offset, numbers[1] if len(numbers) > 1 else None, number)


def read_entries(path: Path) -> tuple[list[Entry], list[tuple[str, str]]]:
    """The manifest's entries with absolute paths, and ``(name, reason)`` for entries that do not
    name a usable file on disk. Raises UserError for a line that cannot be parsed."""
    path = Path(path)
    folder = path.parent
    text = _suffixes(path)[-1] in TEXT_SUFFIXES
    entries, skipped = [], []
    for number, raw in _lines(path):
        if text:
            found = _from_text(raw, path, number)
        else:
            try:
                obj = json.loads(os.fsdecode(raw))
            except ValueError as error:
                raise _bad_line(path, number, f"is not valid JSON ({error})") from None
            found = _from_json(obj, path, number)
        if isinstance(found, Entry):
            name = found.path
            if not os.path.isabs(name):
                name = os.path.join(folder, name)
            found = Entry(name, found.offset, found.duration, number)
            entries.append(found)
        else:
            skipped.append(found)
    return entries, skipped


def read_corpus(
    path: Path, sample_rate: int, *, progress: Callable[[int, int], None] | None = None
):
    """The corpus a manifest lists: every entry's file checked (or known unchanged from the
    corpus index), entries whose part lies outside their file skipped with the reason."""
    from vqstudio.audio.corpus import Corpus, check_files, nothing_usable

    entries, skipped = read_entries(path)
    if not entries and not skipped:
        raise NoAudioError(f"the manifest {shown(path)} lists no audio", "add paths to it")
    unique = list(dict.fromkeys(e.path for e in entries))
    index = CorpusIndex.for_source(path)
    infos, bad = check_files(unique, index, progress)
    known = {info.path: info for info in infos}
    skipped += bad
    files, spans = [], []
    for entry in entries:
        info = known.get(entry.path)
        if info is None:
            continue
        start = int(round(entry.offset * info.sample_rate))
        stop = info.frames
        if entry.duration is not None:
            stop = min(info.frames, start + int(round(entry.duration * info.sample_rate)))
        if not 0 <= start < stop:
            skipped.append((entry.path, (
                f"line {entry.line} asks for {entry.offset:g} s onwards, but the file lasts "
                f"{info.duration:.2f} s"
            )))
            continue
        files.append(info)
        spans.append((start, stop))
    if not files:
        raise nothing_usable(len(entries), f"the manifest {shown(path)}", skipped)
    return Corpus(
        folder=str(path.parent), sample_rate=int(sample_rate), files=files, skipped=skipped,
        spans=spans, notes=[*index.notes, index.summary()],
    )
