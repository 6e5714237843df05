"""Prepared datasets: the same batches as the folder they were made from (within the int16 step),
read without the source files, resumable when interrupted, refusing another dataset's folder; and
`vqstudio prepare` then `vqstudio train` on the result, as a user runs them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from helpers import run_cli, tiny_sets
from vqstudio.audio import prepared
from vqstudio.audio.corpus import SegmentSampler, scan_corpus
from vqstudio.audio.io import read_samples
from vqstudio.errors import ConfigError, UserError

RATE = 24000


@pytest.fixture
def folder(tmp_path):
    """Files at three rates, stereo and mono, one shorter than a segment, one broken."""
    root = tmp_path / "data"
    root.mkdir()
    rng = np.random.default_rng(0)
    sf.write(root / "stereo44.wav", (rng.standard_normal((44100 * 2, 2)) * 0.2).astype(np.float32), 44100)
    sf.write(root / "mono16.flac", (rng.standard_normal(16000 * 1) * 0.2).astype(np.float32), 16000)
    sf.write(root / "at24.wav", (rng.standard_normal(24000 * 3) * 0.2).astype(np.float32), 24000)
    sf.write(root / "short.wav", (rng.standard_normal(2000) * 0.2).astype(np.float32), 24000)
    (root / "broken.wav").write_text("not audio")
    return root


def batches(corpus, steps=6, seed=5):
    train, val = corpus.split(0.25, seed)
    sampler = SegmentSampler(train, RATE, 6000, seed, cache_bytes=0)
    val_sampler = SegmentSampler(val, RATE, 6000, seed + 1)
    return [sampler.batch(s, 8) for s in range(steps)] + [val_sampler.fixed_segments(4)]


# int16: half a step of 1/32767; float16: half a unit in the last of its 11 significant bits
@pytest.mark.parametrize("dtype,step,relative", [("int16", 0.5 / 32767 + 1e-7, 0.0),
                                                 ("float16", 6e-8, 2.0**-11)])
def test_prepared_batches_are_the_folders_batches(folder, tmp_path, dtype, step, relative):
    made = prepared.prepare_corpus(scan_corpus(folder, RATE), tmp_path / "p", RATE, dtype=dtype,
                                   shard_bytes=100_000)  # several shards
    assert len(made.meta["shards"]) > 1
    from_folder = batches(scan_corpus(folder, RATE))
    shutil.rmtree(folder)  # the shards alone: nothing is decoded any more
    corpus = scan_corpus(tmp_path / "p", RATE)
    assert corpus.prepared is not None and [p for p, _ in corpus.skipped] == [str(folder / "broken.wav")]
    for a, b in zip(from_folder, batches(corpus)):
        assert a.shape == b.shape
        assert bool(((a - b).abs() <= step + relative * a.abs()).all())
    assert not any(torch.equal(a, b) for a, b in zip(from_folder[:2], from_folder[1:3]))


def counting_reader(calls, die_at=None):
    """A reader for prepare_corpus that records each file it decodes, and is interrupted (as by
    Ctrl-C) at the ``die_at``-th one."""

    def read(info, n):
        calls.append(info.path)
        if len(calls) == die_at:
            raise KeyboardInterrupt
        return read_samples(info.path, RATE, 0, n, info=info)

    return read


def test_an_interrupted_preparation_resumes_and_ends_identical(folder, tmp_path):
    corpus = scan_corpus(folder, RATE)
    straight = prepared.prepare_corpus(corpus, tmp_path / "straight", RATE, shard_bytes=100_000)
    out = tmp_path / "resumed"
    calls = []
    with pytest.raises(KeyboardInterrupt):
        prepared.prepare_corpus(corpus, out, RATE, shard_bytes=100_000,
                                read=counting_reader(calls, die_at=3))
    assert not (out / prepared.INDEX_NAME).exists()  # not a dataset until finished
    done = json.loads((out / prepared.PROGRESS_NAME).read_text())
    # at24.wav fills shard 0; mono16.flac was in the unfinished shard 1 when short.wav failed
    assert done["shards"] == ["shard-00000.i16"] and list(done["records"]) == [str(folder / "at24.wav")]
    calls.clear()
    again = prepared.prepare_corpus(corpus, out, RATE, shard_bytes=100_000,
                                    read=counting_reader(calls))
    assert len(calls) == len(corpus.files) - 1  # only what was not finished is decoded again
    assert again.meta["files"] == straight.meta["files"]
    for name in straight.meta["shards"]:
        assert (out / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()
    assert not (out / prepared.PROGRESS_NAME).exists() and not list(out.glob("*.part"))


def test_refuses_another_dataset_and_a_folder_with_other_files(folder, tmp_path):
    corpus = scan_corpus(folder, RATE)
    prepared.prepare_corpus(corpus, tmp_path / "p", RATE)
    assert prepared.prepare_corpus(corpus, tmp_path / "p", RATE).meta["files"]  # same: kept
    with pytest.raises(UserError, match="already holds a dataset prepared from other audio"):
        prepared.prepare_corpus(corpus, tmp_path / "p", 16000)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "thesis.pdf").write_text("precious")
    with pytest.raises(UserError, match="not empty"):
        prepared.prepare_corpus(corpus, tmp_path / "other", RATE)
    assert (tmp_path / "other" / "thesis.pdf").read_text() == "precious"
    with pytest.raises(ConfigError, match="--sample-rate 16000"):
        SegmentSampler(scan_corpus(tmp_path / "p", 16000), 16000, 4000, 0)
    shard = tmp_path / "p" / "shard-00000.i16"
    shard.write_bytes(shard.read_bytes()[:1000])  # an interrupted copy
    with pytest.raises(UserError, match="shard-00000.i16 is missing or cut short"):
        scan_corpus(tmp_path / "p", RATE)
    (tmp_path / "p" / prepared.INDEX_NAME).write_text("{broken")
    with pytest.raises(UserError, match="not a usable prepared dataset"):
        scan_corpus(tmp_path / "p", RATE)


def test_prepare_then_train_from_the_command_line(folder, tmp_path):
    out = tmp_path / "prepared"
    result = run_cli("prepare", str(folder), "--out", str(out), "--sample-rate", str(RATE))
    assert result.returncode == 0, result.stderr
    assert "broken.wav" in result.stdout and "4 files" in result.stdout
    again = run_cli("prepare", str(folder), "--out", str(out), "--sample-rate", "16000")
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    run = tmp_path / "run"
    trained = run_cli("train", "--data", str(out), "--run", str(run), "--steps", "2", *tiny_sets())
    assert trained.returncode == 0, trained.stderr
    assert "prepared dataset" in trained.stdout
