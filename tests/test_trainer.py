"""The trainer on real files: live changes, exact resume, non-finite recovery, safe checkpoints."""

from __future__ import annotations

import math
import os
import pickle

import pandas as pd
import pytest
import torch

from helpers import tiny_config, write_corpus
from vqstudio.errors import CheckpointError
from vqstudio.train.checkpoint import latest_checkpoint, load_checkpoint
from vqstudio.train.runfolder import RunFolder
from vqstudio.train.trainer import Trainer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), files=3)


def _params(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_resume_is_exact(corpus, tmp_path):
    config = tiny_config(corpus, ["model.quantizer_dropout=0.5"])
    straight = Trainer(config, tmp_path / "a")
    for _ in straight.steps(until=20):
        pass
    straight.close()

    first = Trainer(config, tmp_path / "b")
    for _ in first.steps(until=10):
        pass
    first.save_checkpoint()
    first.close()
    del first
    torch.manual_seed(1234)  # a resumed run must not depend on the global RNG left behind
    resumed = Trainer(config, tmp_path / "b")
    assert resumed.step_count == 10
    for _ in resumed.steps(until=20):
        pass
    resumed.close()

    a, b = _params(straight), _params(resumed)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"resume diverged in {different[:5]}"
    # metrics.csv has one row per step, no duplicates after the resume
    steps = pd.read_csv(tmp_path / "b" / "metrics.csv")["step"].tolist()
    assert steps == list(range(1, 21))


def test_weight_change_takes_effect_at_the_reported_step(corpus, tmp_path):
    trainer = Trainer(tiny_config(corpus), tmp_path / "run")
    for _ in trainer.steps(until=3):
        pass
    trainer.mailbox.set_weights({"mel_l1/512": 7.5})
    trainer.mailbox.set("lr", 1e-3)
    report = trainer.step()
    kinds = {e["kind"]: e for e in report.events}
    assert kinds["weights"]["step"] == 3 and kinds["weights"]["changes"] == {"mel_l1/512": [1.0, 7.5]}
    assert kinds["lr"]["new"] == 1e-3
    assert report.weights["mel_l1/512"] == 7.5 and report.lr == pytest.approx(1e-3)
    trainer.mailbox.set_weights({"nonsense": 1.0, "commitment": -2.0})
    refused = [e for e in trainer.step().events if e["kind"] == "refused"]
    assert len(refused) == 2
    trainer.close()

    frame = pd.read_csv(tmp_path / "run" / "metrics.csv")
    assert frame.loc[frame.step == 3, "weight/mel_l1/512"].item() == 1.0
    assert frame.loc[frame.step == 4, "weight/mel_l1/512"].item() == 7.5
    for term in trainer.config.loss.term_names():
        assert term in frame.columns and f"weight/{term}" in frame.columns
    events = RunFolder(tmp_path / "run").read_events()
    assert any(e["kind"] == "weights" and e["step"] == 3 for e in events)


def test_nonfinite_steps_are_skipped_then_the_last_checkpoint_restored(corpus, tmp_path):
    trainer = Trainer(tiny_config(corpus, ["train.max_nonfinite=3"]), tmp_path / "run")
    for _ in trainer.steps(until=4):
        pass
    trainer.save_checkpoint()
    good = _params(trainer)
    with torch.no_grad():  # corrupt one weight, as an exploding update would
        next(trainer.model.parameters()).fill_(math.nan)
    reports = [trainer.step() for _ in range(3)]
    assert all(r.skipped for r in reports)
    assert trainer.step_count == 4
    kinds = [e["kind"] for r in reports for e in r.events]
    assert kinds.count("nonfinite_skip") == 3 and "restored" in kinds
    assert trainer.lr_scale == 0.5
    restored = _params(trainer)
    assert all(torch.equal(good[k], restored[k]) for k in good)
    report = trainer.step()
    assert not report.skipped and math.isfinite(report.terms["total"])
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    trainer.close()


def test_checkpoints_rotate_and_point_at_the_latest(corpus, tmp_path):
    trainer = Trainer(tiny_config(corpus, ["train.checkpoint_every=2", "train.keep_checkpoints=2"]),
                      tmp_path / "run")
    for _ in trainer.steps(until=8):
        pass
    trainer.close()
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("step-*.pt"))
    assert ckpts == ["step-00000006.pt", "step-00000008.pt"]
    latest = latest_checkpoint(tmp_path / "run" / "checkpoints")
    assert load_checkpoint(latest)["step"] == 8
    assert not list((tmp_path / "run" / "checkpoints").glob(".*.part"))


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_checkpoint_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    with evil.open("wb") as handle:
        pickle.dump({"model": _Evil(marker), "step": 1}, handle)
    # torch.save's zip container, too: the payload sits in data.pkl
    evil_zip = tmp_path / "evil-zip.pt"
    torch.save({"model": _Evil(marker), "step": 1}, evil_zip)
    for path in (evil, evil_zip):
        with pytest.raises(CheckpointError, match="refused") as info:
            load_checkpoint(path)
        assert "\n" not in str(info.value)
    assert not marker.exists(), "loading ran the payload"


def test_reconstruct_leaves_training_untouched(corpus, tmp_path):
    import numpy as np

    trainer = Trainer(tiny_config(corpus), None)
    for _ in trainer.steps(until=2):
        pass
    before = _params(trainer)
    rng = torch.get_rng_state()
    wave = np.random.default_rng(0).normal(0, 0.1, 6001).astype(np.float32)
    trainer.mailbox.command("reconstruct", wave=wave, levels=1)
    report = trainer.step()
    (result,) = report.results
    assert result["kind"] == "reconstruction" and result["audio"].shape == (6001,)
    assert result["step"] == 2
    one_step_later = _params(trainer)
    assert any(not torch.equal(before[k], one_step_later[k]) for k in before)
    # a reconstruction alone changes nothing and draws no random numbers
    trainer.mailbox.command("reconstruct", wave=wave)
    after = _params(trainer)
    rng = torch.get_rng_state()
    trainer.service_mailbox()
    assert torch.equal(rng, torch.get_rng_state())
    assert all(torch.equal(after[k], v) for k, v in _params(trainer).items())
    trainer.close()


def test_pause_stops_steps_and_still_serves_commands(corpus, tmp_path):
    import threading
    import time

    trainer = Trainer(tiny_config(corpus), tmp_path / "run")
    seen: list[int] = []

    def drive():
        for report in trainer.steps(until=10_000):
            seen.append(report.step)

    thread = threading.Thread(target=drive, name="trainer")
    thread.start()
    try:
        while len(seen) < 2:
            time.sleep(0.01)
        trainer.mailbox.pause()
        time.sleep(0.3)
        paused_at = trainer.step_count
        trainer.mailbox.set_weights({"commitment": 0.5})
        time.sleep(0.5)
        assert trainer.step_count == paused_at, "a step ran while paused"
        assert trainer.weights["commitment"] == 0.5, "settings are applied while paused"
        trainer.mailbox.resume()
        deadline = time.monotonic() + 30
        while trainer.step_count <= paused_at and time.monotonic() < deadline:
            time.sleep(0.01)
        assert trainer.step_count > paused_at
    finally:
        trainer.mailbox.stop()
        thread.join(30)
    trainer.close()
    kinds = [e["kind"] for e in RunFolder(tmp_path / "run").read_events()]
    assert "pause" in kinds and "resume" in kinds and "weights" in kinds
