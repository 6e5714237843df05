"""The trainer on real files: live changes, exact resume, non-finite recovery, safe checkpoints."""

from __future__ import annotations

import math
import os
import pickle

import numpy as np
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


def _wait_until(condition, what: str, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_pause_stops_steps_and_still_serves_commands(corpus, tmp_path):
    import threading

    trainer = Trainer(tiny_config(corpus), tmp_path / "run")
    seen: list[int] = []
    idle = threading.Event()  # set each time the paused loop has served the mailbox

    def drive():
        for report in trainer.steps(until=10_000, idle=idle.set):
            seen.append(report.step)

    thread = threading.Thread(target=drive, name="trainer")
    thread.start()
    try:
        _wait_until(lambda: len(seen) >= 2, "two steps")
        trainer.mailbox.pause()
        assert idle.wait(60), "the paused loop never served its mailbox"
        paused_at = trainer.step_count
        assert seen[-1] == paused_at
        wave = np.random.default_rng(0).normal(0, 0.1, 4800).astype(np.float32)
        idle.clear()
        trainer.mailbox.set_weights({"commitment": 0.5})
        asked = trainer.mailbox.command("reconstruct", wave=wave, tag="while paused")
        _wait_until(lambda: trainer.weights["commitment"] == 0.5 and idle.is_set(), "the change")
        events, results = trainer.drain()
        assert [r["id"] for r in results] == [asked] and results[0]["step"] == paused_at
        assert [e["kind"] for e in events] == ["pause", "weights"]
        assert trainer.step_count == paused_at and seen[-1] == paused_at, "a step ran while paused"
        trainer.mailbox.resume()
        _wait_until(lambda: trainer.step_count > paused_at + 1, "steps after the resume")
    finally:
        trainer.mailbox.stop()
        thread.join(30)
    trainer.close()
    kinds = [e["kind"] for e in RunFolder(tmp_path / "run").read_events()]
    assert "pause" in kinds and "resume" in kinds and "weights" in kinds


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    """Every tensor a step could change: model (with buffers), discriminators, both optimizers."""
    flat: dict[str, torch.Tensor] = {}

    def walk(prefix, value):
        if torch.is_tensor(value):
            flat[prefix] = value.detach().clone()
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}/{k}", v)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(f"{prefix}/{i}", v)
        elif isinstance(value, (int, float)):
            flat[prefix] = torch.tensor(float(value))

    walk("model", trainer.model.state_dict())
    walk("batch_usage", [b for n, b in trainer.model.named_buffers() if n.endswith("batch_usage")])
    walk("optimizer", trainer.optimizer.state_dict()["state"])
    walk("discriminators", trainer.losses.discriminator_state_dict())
    walk("disc_optimizer", trainer.disc_optimizer.state_dict()["state"])
    return flat


def _assert_same(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> None:
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k].nan_to_num(7.0), after[k].nan_to_num(7.0))]
    assert not changed, f"a skipped step changed {changed[:5]}"


@pytest.mark.parametrize("broken", ["codec", "discriminator"])
def test_a_nonfinite_step_changes_nothing_with_adversarial_training(corpus, broken):
    """A NaN in the codec makes the generator's total non-finite; a NaN in a discriminator with
    the adversarial weights at 0 leaves that total finite and only d_loss non-finite."""
    sets = ["loss.adversarial=true", "loss.discriminator_periods=[2]", "loss.discriminator_fft_sizes=[256]",
            "train.max_nonfinite=100"]
    if broken == "discriminator":
        sets += ["loss.weights.adversarial=0", "loss.weights.feature_matching=0"]
    trainer = Trainer(tiny_config(corpus, sets), None)
    for _ in trainer.steps(until=2):
        pass
    part = trainer.model if broken == "codec" else trainer.losses.discriminators
    with torch.no_grad():
        next(part.parameters()).view(-1)[0] = math.nan
    before = _state(trainer)
    report = trainer.step()
    assert report.skipped and report.step == 2 and trainer.step_count == 2
    assert [e["kind"] for e in report.events] == ["nonfinite_skip"]
    _assert_same(before, _state(trainer))
    trainer.close()


def test_zero_weight_costly_terms_stay_out_of_the_backward_pass(corpus, monkeypatch):
    import vqstudio.train.losses as losses_module

    trainer = Trainer(tiny_config(corpus, ["loss.weights.mrstft=0", "train.log_every=2"]), None)
    calls = {"forward": 0, "backward": 0}
    real_pass = losses_module.spectrum_pass

    def count_backward(grad):
        calls["backward"] += 1

    def seen(entries, power, *, mrstft, complex_stft):
        """The real one-pass spectral terms, counted: how often the MR-STFT runs, and how often a
        gradient flows back through its value."""
        (sc, logmag, complex_value), magnitudes = real_pass(
            entries, power, mrstft=mrstft, complex_stft=complex_stft)
        if mrstft and any(in_terms for _, _, in_terms, _ in entries):
            calls["forward"] += 1
            if sc.requires_grad:
                sc.register_hook(count_backward)
        return (sc, logmag, complex_value), magnitudes

    monkeypatch.setattr(losses_module, "spectrum_pass", seen)
    first, second = trainer.step(), trainer.step()
    # Not computed on a step that logs nothing; computed for the record (no graph) on a logging step.
    assert not first.terms and math.isfinite(second.terms["mrstft"]) and second.terms["mrstft"] > 0
    assert calls == {"forward": 1, "backward": 0}
    trainer.mailbox.set_weights({"mrstft": 1.0})
    trainer.step()
    assert calls == {"forward": 2, "backward": 1}
    trainer.close()


def test_a_resume_sets_later_history_aside_and_says_how_much(corpus, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(corpus, ["train.checkpoint_every=4"]), run)
    for _ in trainer.steps(until=7):
        pass
    trainer.record_event("note")  # an event at step 7, after the last checkpoint (step 4)
    trainer.close()
    resumed = Trainer(tiny_config(corpus), run)
    assert resumed.step_count == 4
    events, _ = resumed.drain()
    resumed.close()
    resume = next(e for e in events if e["kind"] == "resume")
    assert resume["lost_steps"] == 3 and resume["rolled_back"] == "rolled_back"
    assert pd.read_csv(run / "metrics.csv")["step"].tolist() == [1, 2, 3, 4]
    aside = pd.read_csv(run / "rolled_back" / "metrics-after-step-00000004.csv")
    assert aside["step"].tolist() == [5, 6, 7]
    late = (run / "rolled_back" / "events-after-step-00000004.jsonl").read_text()
    assert '"note"' in late
    assert all(e["step"] <= 4 for e in RunFolder(run).read_events() if e["kind"] != "resume")


def test_the_optimizer_is_fused_and_stays_so_after_a_resume_from_an_unfused_state(corpus, tmp_path):
    """AdamW's fused kernel (one pass over all parameters) steps like the per-parameter loop to
    float rounding, and a checkpoint written by an unfused optimizer (an older version, a fork's
    template) does not switch a resumed trainer back to the loop."""
    trainer = Trainer(tiny_config(corpus), tmp_path / "run")
    assert all(g["fused"] for g in trainer.optimizer.param_groups)
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    loop_params = [p.detach().clone().requires_grad_() for p in params]
    loop = torch.optim.AdamW(loop_params, **{k: trainer.optimizer.defaults[k]
                                             for k in ("lr", "betas", "weight_decay", "eps")})
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        for p, q in zip(params, loop_params):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        trainer.optimizer.step()
        loop.step()
    for p, q in zip(params, loop_params):
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-7), (p - q).abs().max()
    trainer.optimizer.zero_grad(set_to_none=True)
    for group in trainer.optimizer.param_groups:
        group["fused"] = None  # as an unfused optimizer's state_dict carries it
    trainer.save_checkpoint()
    trainer.close()
    resumed = Trainer(tiny_config(corpus), tmp_path / "run")
    saved = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert saved["optimizer"]["param_groups"][0]["fused"] is None
    assert all(g["fused"] for g in resumed.optimizer.param_groups)
    assert not resumed.step().skipped  # and it steps
    resumed.close()
