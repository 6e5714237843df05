"""Batches cut ahead by worker processes: the same batches as in the training thread, exact resume
with workers, files that vanish during training skipped with an event, and data.workers."""

from __future__ import annotations

import json
import os

import pytest
import torch

from helpers import tiny_config, write_corpus
from vqstudio.audio.corpus import SegmentSampler, scan_corpus
from vqstudio.audio.prefetch import BatchFeed, resolve_workers, usable_cores
from vqstudio.errors import ConfigError, NoAudioError
from vqstudio.train.trainer import Trainer

RATE = 24000


@pytest.fixture
def folder(tmp_path):
    return write_corpus(tmp_path / "data", files=4, seconds=1.0)


def test_workers_deliver_the_training_threads_batches_in_any_order(folder):
    sampler = SegmentSampler(scan_corpus(folder, RATE), RATE, 4000, seed=3, cache_bytes=0)
    feed = BatchFeed(sampler, 4, rank=1, world=2, workers=2)
    try:
        for step in [0, 1, 2, 3, 1, 2, 40, 41, 0]:  # a rollback and a jump restart the stream
            assert torch.equal(feed.batch(step), sampler.batch(step, 4, 1, 2)), step
    finally:
        feed.close()


@pytest.mark.parametrize("workers", [0, 2])
def test_a_file_that_disappears_is_skipped_once_and_training_goes_on(folder, workers):
    corpus = scan_corpus(folder, RATE)
    sampler = SegmentSampler(corpus, RATE, 4000, seed=0, cache_bytes=0)
    gone = folder / "clip1.flac"
    gone.unlink()
    feed = BatchFeed(sampler, 8, workers=workers)
    try:
        batches = [feed.batch(step) for step in range(6)]
    finally:
        feed.close()
    failures = feed.take_failures()
    assert [p for p, _ in failures] == [str(gone)] and "does not exist" in failures[0][1]
    assert feed.take_failures() == []
    # the stand-in segments are a pure function of the step and of which files fail
    fresh = SegmentSampler(corpus, RATE, 4000, seed=0, cache_bytes=0)
    assert all(torch.equal(b, fresh.batch(s, 8)) for s, b in enumerate(batches))
    assert all(bool(b.abs().sum() > 0) for b in batches)


def test_nothing_readable_left_is_a_clear_error_from_a_worker(folder):
    sampler = SegmentSampler(scan_corpus(folder, RATE), RATE, 4000, seed=0, cache_bytes=0)
    for path in folder.iterdir():
        path.unlink()
    feed = BatchFeed(sampler, 2, workers=1)
    try:
        with pytest.raises(NoAudioError, match="none of the corpus files can be read"):
            feed.batch(0)
    finally:
        feed.close()


def _params(trainer):
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_resume_with_workers_is_exact(folder, tmp_path):
    """Workers in both halves of a resumed run give the straight in-thread run's weights."""
    straight = Trainer(tiny_config(folder, ["data.workers=0"]), tmp_path / "a")
    for _ in straight.steps(until=8):
        pass
    straight.close()
    config = tiny_config(folder, ["data.workers=2"])
    first = Trainer(config, tmp_path / "b")
    for _ in first.steps(until=4):
        pass
    first.save_checkpoint()
    first.close()
    resumed = Trainer(config, tmp_path / "b")
    assert resumed.step_count == 4 and resumed.data.workers == 2
    for _ in resumed.steps(until=8):
        pass
    resumed.close()
    a, b = _params(straight), _params(resumed)
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_trainer_logs_a_file_that_vanished_and_goes_on(folder, tmp_path):
    trainer = Trainer(tiny_config(folder, ["data.workers=0"]), tmp_path / "run")
    victim = next(f.path for f in trainer.data.train.files)
    os.unlink(victim)
    try:
        for _ in trainer.steps(until=4):
            pass
    finally:
        trainer.close()
    assert trainer.step_count == 4
    events = [json.loads(l) for l in (tmp_path / "run" / "events.jsonl").read_text().splitlines()]
    gone = [e for e in events if e["kind"] == "unreadable_file"]
    assert len(gone) <= 1 and all(e["file"] == victim for e in gone)
    assert gone, "the victim is drawn in the first four steps with this seed: it must be reported"


def test_data_workers_follow_the_cores_and_are_validated(folder):
    assert resolve_workers(3) == 3 and resolve_workers(0) == 0
    assert resolve_workers(-1) == max(0, min(8, usable_cores() - 2))
    assert resolve_workers(-1, decodes_on_use=False) == 0 and resolve_workers(2, False) == 2
    corpus = scan_corpus(folder, RATE)
    assert not SegmentSampler(corpus, RATE, 4000, 0).decodes_on_use  # fits the cache
    assert SegmentSampler(corpus, RATE, 4000, 0, cache_bytes=RATE * 4).decodes_on_use
    for bad in ["-2", "1.5", "true"]:
        with pytest.raises(ConfigError, match="workers"):
            tiny_config(folder, [f"data.workers={bad}"])
