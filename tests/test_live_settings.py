"""Live settings (train/settings.py) on a real trainer: each new one, posted mid-training, is an
event at a step and changes what the trainer does; bad values are refused with --set's message;
a checkpoint carries them; DESIGN.md's table is the code's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from helpers import REPO, tiny_config, write_corpus
from vqstudio.config import load_preset
from vqstudio.errors import ConfigError
from vqstudio.experiments.fork import change_kind
from vqstudio.train.losses import LossSuite
from vqstudio.train.settings import LIVE, is_live, live_keys, setting_for_key
from vqstudio.train.trainer import Trainer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), files=2)


@pytest.fixture
def trainer(corpus):
    t = Trainer(tiny_config(corpus, ["model.dead_code_replace_every=0"]))
    yield t
    t.close()


def _steps(trainer: Trainer, n: int) -> list[dict]:
    events = []
    for _ in range(n):
        events += trainer.step().events
    return events


def _change(trainer: Trainer, name: str, value) -> dict:
    """Post ``name=value`` after two steps and step once more: the one event it gave."""
    _steps(trainer, 2)
    trainer.mailbox.set(name, value)
    events = [e for e in _steps(trainer, 1) if e["kind"] in (name, "refused")]
    assert len(events) == 1, events
    return events[0]


def test_mel_norm_switch_changes_the_mel_term(trainer, corpus):
    batch = trainer.data.batch(0)
    with torch.no_grad():
        out = trainer.model(batch)
        before = trainer.losses.terms(out, batch)["mel_l1/256"].item()
    event = _change(trainer, "mel_norm", "tanh")
    assert event["kind"] == "mel_norm" and event["step"] == 2
    assert (event["old"], event["new"]) == ("log", "tanh")
    assert trainer.config.loss.mel_norm == "tanh"
    with torch.no_grad():
        after = trainer.losses.terms(out, batch)["mel_l1/256"].item()
        tanh_suite = LossSuite(tiny_config(corpus, ["loss.mel_norm=tanh"]))
        expected = tanh_suite.terms(out, batch)["mel_l1/256"].item()
    assert after != pytest.approx(before, rel=1e-3)
    assert after == pytest.approx(expected, rel=1e-6)  # the suite now is a tanh suite


def test_dead_code_threshold_ema_decay_and_grad_clip(trainer):
    event = _change(trainer, "dead_code_threshold", 3.0)
    assert event["kind"] == "dead_code_threshold" and (event["old"], event["new"]) == (0.5, 3.0)
    quantizer = trainer.model.quantizer
    assert quantizer.dead_code_threshold == 3.0
    assert all(level.dead_threshold == 3.0 for level in quantizer.levels)
    counts = torch.stack([level.cluster_size for level in quantizer.levels])
    dead = trainer.codebook_stats()["dead_fraction"]
    assert torch.allclose(torch.as_tensor(dead).float(), (counts < 3.0).float().mean(-1))

    event = _change(trainer, "ema_decay", 0.5)
    assert event["kind"] == "ema_decay" and event["new"] == 0.5
    level = quantizer.levels[0]
    size_before = level.cluster_size.clone()
    _steps(trainer, 1)
    usage = level.batch_usage
    # the running count moved by half the way towards this batch's count: decay 0.5 in force
    assert torch.allclose(level.cluster_size, 0.5 * size_before + 0.5 * usage, atol=1e-5)

    event = _change(trainer, "grad_clip", 0.25)
    assert event["kind"] == "grad_clip" and (event["old"], event["new"]) == (1.0, 0.25)
    assert trainer.config.train.grad_clip == 0.25


def test_bad_values_are_refused_with_the_set_message(trainer):
    with pytest.raises(ConfigError) as cli:
        load_preset("tiny-cpu", ["model.ema_decay=1.5"])
    event = _change(trainer, "ema_decay", 1.5)
    assert event["kind"] == "refused" and event["setting"] == "ema_decay"
    assert event["reason"] == str(cli.value)
    event = _change(trainer, "mel_norm", "cube")
    assert event["kind"] == "refused" and "loss.mel_norm = 'cube' is not one of" in event["reason"]
    event = _change(trainer, "grad_clip", -1)
    assert event["kind"] == "refused" and "train.grad_clip" in event["reason"]
    assert trainer.config.model.ema_decay == 0.99 and trainer.config.train.grad_clip == 1.0
    _steps(trainer, 1)  # training goes on


def test_a_checkpoint_carries_live_settings(corpus, tmp_path):
    first = Trainer(tiny_config(corpus), tmp_path / "run")
    _steps(first, 2)
    first.mailbox.set("mel_norm", "minmax")
    first.mailbox.set("ema_decay", 0.9)
    _steps(first, 1)
    first.save_checkpoint()
    first.close()
    resumed = Trainer(tiny_config(corpus), tmp_path / "run")
    try:
        assert resumed.config.loss.mel_norm == "minmax"
        assert all(m.norm == "minmax" for m in resumed.losses.mel_losses)
        assert all(level.decay == 0.9 for level in resumed.model.quantizer.levels)
        kinds = [e["kind"] for e in resumed.run.read_events()]
        assert kinds.count("mel_norm") == 1  # the resume put it back quietly
    finally:
        resumed.close()


def test_keys_and_forks_agree_with_the_table():
    assert setting_for_key("loss.mel_norm", "tanh") == ("mel_norm", "tanh")
    assert setting_for_key("loss.weights.mrstft", 2) == ("weights", {"mrstft": 2})
    assert setting_for_key("train.grad_clip", 5.0) == ("grad_clip", 5.0)
    with pytest.raises(ConfigError, match="fork"):
        setting_for_key("model.codebook_size", 512)
    for key in live_keys():
        assert change_kind(key.replace("<term>", "mrstft")) == "live"
    assert not is_live("model.codebook_size") and not is_live("loss.mel_scales")


def test_design_lists_exactly_the_live_settings():
    text = (REPO / "DESIGN.md").read_text(encoding="utf-8")
    section = text.split("<!-- live-settings -->")[1].split("<!-- /live-settings -->")[0]
    listed = re.findall(r"^\| `([^`]+)` \|", section, flags=re.M)
    assert listed == [s.key for s in LIVE]
