"""A prepared dataset: a corpus decoded, mixed down and resampled once, stored as memory-mapped
shards the sampler reads without decoding (``vqstudio prepare DATA --out DIR``).

::

    DIR/
      prepared.json          what is where: the source, the rate, the sample type, and for every
                             file its header facts, its span and (shard, offset, length)
      shard-00000.i16 ...    raw little-endian samples, int16 (x 32767) or float16, files end to end
      progress.json          only while preparing: the shards finished so far

Each file is stored whole, exactly as :func:`vqstudio.audio.io.read_samples` gives it at the
dataset's rate, so a segment read from a shard is the segment read from the file (to within the
int16 step, 1/32767) and the sampler's picks, which depend only on the spans, are the same: a run
trained from DIR sees the batches a run trained from DATA would.

Preparing is resumable: shards are written whole (temporary name, fsync, rename) and listed in
``progress.json`` as they finish; an interrupted run starts again after the last finished shard.
It refuses a DIR that holds anything else, including a dataset prepared from another source or at
another rate. ``prepared.json`` is written last, atomically: a DIR without it is not a dataset.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vqstudio.atomic import atomic_path, atomic_write_text, fsync_folder
from vqstudio.audio.corpus_index import shown
from vqstudio.audio.io import AudioInfo, read_samples, resampled_length
from vqstudio.errors import ConfigError, UserError

INDEX_NAME = "prepared.json"
PROGRESS_NAME = "progress.json"
FORMAT = "vqstudio-prepared"
VERSION = 1
DTYPES = {"int16": ("<i2", "i16"), "float16": ("<f2", "f16")}
INT16_SCALE = 32767.0
DEFAULT_SHARD_BYTES = 1 << 30


def is_prepared(folder: Path) -> bool:
    """Whether ``folder`` is a finished prepared dataset."""
    return folder.is_dir() and (folder / INDEX_NAME).is_file()


def fingerprint(corpus, sample_rate: int, dtype: str) -> str:
    """What identifies a dataset: the source's files (path, rate, frames, channels, span), the
    target rate and the sample type. Two preparations with the same fingerprint are the same."""
    h = hashlib.sha256(f"{sample_rate}|{dtype}|".encode())
    for info, span in zip(corpus.files, corpus.spans):
        h.update(os.fsencode(info.path))
        h.update(f"|{info.sample_rate}|{info.frames}|{info.channels}|{span[0]}|{span[1]}\n".encode())
    return h.hexdigest()


def _encode(samples: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "int16":
        return np.clip(np.rint(samples * INT16_SCALE), -32768, 32767).astype("<i2")
    return samples.astype("<f2")


@dataclass
class PreparedSet:
    """An opened prepared dataset; :meth:`corpus` gives the Corpus that trains from it."""

    folder: Path
    meta: dict
    _maps: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    _where: dict[str, tuple[int, int, int]] = field(default_factory=dict, repr=False)

    @classmethod
    def open(cls, folder: str | os.PathLike) -> PreparedSet:
        folder = Path(folder)
        try:
            meta = json.loads((folder / INDEX_NAME).read_bytes())
            if meta.get("format") != FORMAT or meta.get("version") != VERSION:
                raise ValueError("it was not written by this version of vqstudio prepare")
            if meta["dtype"] not in DTYPES:
                raise ValueError(f"unknown sample type {meta['dtype']!r}")
            where = {r["path"]: (int(r["shard"]), int(r["offset"]), int(r["length"]))
                     for r in meta["files"]}
            needed: dict[int, int] = {}
            for shard, offset, length in where.values():
                needed[shard] = max(needed.get(shard, 0), offset + length)
            for shard, samples in needed.items():
                name = folder / meta["shards"][shard]
                if not name.is_file() or name.stat().st_size < 2 * samples:
                    raise ValueError(f"its shard {meta['shards'][shard]} is missing or cut short")
        except (OSError, ValueError, KeyError, TypeError, IndexError) as error:
            raise UserError(
                f"{shown(folder / INDEX_NAME)} is not a usable prepared dataset ({error})",
                "copy the whole folder again, or prepare the dataset again with `vqstudio prepare`",
            ) from None
        return cls(folder, meta, _where=where)

    def __getstate__(self) -> dict:
        # memory maps are reopened in each worker process, never pickled
        return {"folder": self.folder, "meta": self.meta, "_maps": {}, "_where": self._where}

    @property
    def sample_rate(self) -> int:
        return int(self.meta["sample_rate"])

    def check_rate(self, rate: int) -> None:
        if int(rate) != self.sample_rate:
            raise ConfigError(
                f"the prepared dataset {shown(self.folder)} holds audio at {self.sample_rate} Hz "
                f"but the model runs at {rate} Hz",
                f"prepare it again with --sample-rate {rate}, or use a model at {self.sample_rate} Hz",
            )

    def corpus(self, sample_rate: int):
        """The Corpus of the source this was prepared from, reading its samples from the shards."""
        from vqstudio.audio.corpus import Corpus

        self.check_rate(sample_rate)
        files, spans = [], []
        for r in self.meta["files"]:
            files.append(AudioInfo(r["path"], int(r["sample_rate"]), int(r["frames"]),
                                   int(r["channels"]), int(r["frames"]) / int(r["sample_rate"]),
                                   str(r["format"])))
            spans.append((int(r["span"][0]), int(r["span"][1])))
        note = (f"Read from the prepared dataset {shown(self.folder)} ({len(self.meta['shards'])} "
                f"shard{'s' if len(self.meta['shards']) != 1 else ''}, {self.meta['dtype']}).")
        return Corpus(folder=self.meta["source"], sample_rate=int(sample_rate), files=files,
                      spans=spans, skipped=[tuple(s) for s in self.meta["skipped"]],
                      notes=[note], prepared=self)

    def _map(self, shard: int) -> np.ndarray:
        if shard not in self._maps:
            name = self.folder / self.meta["shards"][shard]
            self._maps[shard] = np.memmap(name, dtype=DTYPES[self.meta["dtype"]][0], mode="r")
        return self._maps[shard]

    def samples(self, path: str, first: int, count: int) -> np.ndarray:
        """Float32 ``[count]`` samples of file ``path`` from sample ``first``, at the dataset's rate."""
        shard, offset, length = self._where[path]
        stop = min(first + count, length)
        raw = self._map(shard)[offset + first : offset + stop]
        if self.meta["dtype"] == "int16":
            return raw.astype(np.float32) / np.float32(INT16_SCALE)
        return raw.astype(np.float32)


class _ShardWriter:
    """Appends encoded files to numbered shards, closing each whole (fsync, rename)."""

    def __init__(self, out: Path, dtype: str, shard_bytes: int, first_shard: int):
        self.out, self.dtype, self.shard_bytes = out, dtype, shard_bytes
        self.number = first_shard
        self.handle = None
        self.written = 0

    def name(self, number: int) -> str:
        return f"shard-{number:05d}.{DTYPES[self.dtype][1]}"

    def add(self, samples: np.ndarray) -> tuple[int, int]:
        """Store ``samples``; returns (shard, offset in samples)."""
        if self.handle is None:
            self.handle = open(self.out / (self.name(self.number) + ".part"), "wb")
            self.written = 0
        offset = self.written
        data = _encode(samples, self.dtype)
        self.handle.write(data.tobytes())
        self.written += len(data)
        return self.number, offset

    def full(self) -> bool:
        return self.handle is not None and self.written * 2 >= self.shard_bytes

    def close_shard(self) -> str | None:
        """Finish the open shard; returns its name (None when nothing was open)."""
        if self.handle is None:
            return None
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        self.handle = None
        name = self.name(self.number)
        os.replace(self.out / (name + ".part"), self.out / name)
        fsync_folder(self.out)
        self.number += 1
        return name


def _check_out(out: Path, digest: str) -> dict | None:
    """The progress of an interrupted preparation of the same dataset, or None to start afresh.
    Raises UserError when ``out`` holds something else."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise UserError(f"--out {shown(out)} is a file", "give a folder for the prepared dataset")
    for name in (INDEX_NAME, PROGRESS_NAME):
        if (out / name).is_file():
            try:
                held = json.loads((out / name).read_bytes())
            except ValueError:
                held = {}
            if held.get("fingerprint") != digest:
                raise UserError(
                    f"{shown(out)} already holds a dataset prepared from other audio, another "
                    f"rate or another sample type (from {shown(held.get('source', '?'))})",
                    "choose another --out folder, or delete that one first",
                )
            return held
    if any(not p.name.endswith(".part") for p in out.iterdir()):
        raise UserError(f"--out {shown(out)} is not empty and not a prepared dataset",
                        "choose a new or empty folder")
    return None


def prepare_corpus(
    corpus,
    out: str | os.PathLike,
    sample_rate: int,
    *,
    dtype: str = "int16",
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    read: Callable[[AudioInfo, int], np.ndarray] | None = None,
    progress: bool | None = None,
) -> PreparedSet:
    """Write ``corpus`` into ``out`` as a prepared dataset at ``sample_rate`` (see the module).
    ``read(info, samples)`` gives a file's samples at the rate (default: decode and resample
    it). A finished identical dataset is returned as it is; an interrupted one is resumed."""
    from tqdm import tqdm

    if dtype not in DTYPES:
        raise ConfigError(f"sample type {dtype!r}", f"use one of {', '.join(DTYPES)}")
    out = Path(out)
    digest = fingerprint(corpus, sample_rate, dtype)
    held = _check_out(out, digest)
    if held is not None and "shards" in held and (out / INDEX_NAME).is_file():
        return PreparedSet.open(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.part"):
        stale.unlink()
    read = read or (lambda info, n: read_samples(info.path, sample_rate, 0, n, info=info))
    done = held or {"fingerprint": digest, "source": corpus.folder, "shards": [], "records": {}}
    records: dict[str, dict] = done["records"]
    writer = _ShardWriter(out, dtype, shard_bytes, len(done["shards"]))
    pending: dict[str, dict] = {}
    unique = list(dict.fromkeys(info.path for info in corpus.files))
    infos = {info.path: info for info in corpus.files}

    def finish_shard() -> None:
        name = writer.close_shard()
        if name is not None:
            done["shards"].append(name)
            records.update(pending)
            pending.clear()
            atomic_write_text(out / PROGRESS_NAME, json.dumps(done))

    show = sys.stderr.isatty() if progress is None else progress
    # no tqdm object at all when hidden: even a disabled one starts tqdm's monitor thread
    bar = tqdm(unique, unit="file", desc="prepare", smoothing=0.1) if show else None
    for path in bar if bar is not None else unique:
        if path in records:
            continue
        info = infos[path]
        samples = np.asarray(read(info, resampled_length(info.frames, info.sample_rate,
                                                         sample_rate)), dtype=np.float32)
        shard, offset = writer.add(samples)
        pending[path] = {"shard": shard, "offset": offset, "length": len(samples)}
        if writer.full():
            finish_shard()
    finish_shard()
    if bar is not None:
        bar.close()
    meta = {
        "format": FORMAT, "version": VERSION, "fingerprint": digest, "source": corpus.folder,
        "sample_rate": int(sample_rate), "dtype": dtype, "shards": done["shards"],
        "skipped": [list(s) for s in corpus.skipped],
        "files": [
            {"path": info.path, "sample_rate": info.sample_rate, "frames": info.frames,
             "channels": info.channels, "format": info.format, "span": list(span),
             **records[info.path]}
            for info, span in zip(corpus.files, corpus.spans)
        ],
    }
    with atomic_path(out / INDEX_NAME) as tmp:
        tmp.write_text(json.dumps(meta), encoding="ascii")
        tmp.chmod(0o644)  # readable by every user of a shared file system, like the shards
    (out / PROGRESS_NAME).unlink(missing_ok=True)
    return PreparedSet.open(out)


def prepare(data: str | os.PathLike, out: str | os.PathLike, sample_rate: int,
            *, dtype: str = "int16", progress: bool | None = None) -> tuple[PreparedSet, str]:
    """Scan ``data`` (a folder or a manifest) and prepare it into ``out``; returns the dataset
    and the scan's report."""
    from vqstudio.audio.corpus import scan_corpus

    corpus = scan_corpus(Path(data).absolute(), sample_rate)
    if corpus.prepared is not None:
        raise UserError(f"{shown(data)} is already a prepared dataset",
                        "give the folder of audio it was made from")
    return prepare_corpus(corpus, out, sample_rate, dtype=dtype, progress=progress), corpus.report()


def describe(prepared: PreparedSet) -> str:
    """One line about a prepared dataset: files, hours, shards, size."""
    seconds = sum(r["length"] for r in prepared.meta["files"]) / prepared.sample_rate
    size = sum((prepared.folder / s).stat().st_size for s in prepared.meta["shards"])
    return (f"{shown(prepared.folder)}: {len(prepared.meta['files'])} files, {seconds / 3600:.2f} h "
            f"at {prepared.sample_rate} Hz in {len(prepared.meta['shards'])} "
            f"{prepared.meta['dtype']} shard{'s' if len(prepared.meta['shards']) != 1 else ''} "
            f"({size / 2**20:.1f} MiB)")

