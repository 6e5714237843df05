"""Reconstructions while training runs come from a snapshot of the weights taken at a step
boundary: exactly the model's output at the step they name, answered on a thread of their own.

Real parts: a real Trainer on real files, the real TrainingWorker and its threads, a checkpoint
written by the run and loaded back as the oracle."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from helpers import attached_worker, tiny_config
from vqstudio.model import Codec
from vqstudio.model import inference
from vqstudio.model.inference import decode_latent, encode_clip, reconstruct
from vqstudio.model.snapshot import WeightSnapshots

WAIT_MS = 60_000


def _wave(samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 24000
    return (0.3 * np.sin(2 * math.pi * 220 * t) + rng.normal(0, 0.02, samples)).astype(np.float32)


def test_encoding_once_and_decoding_each_level_count_is_reconstruct_to_the_bit(corpus, monkeypatch):
    torch.manual_seed(0)
    model = Codec(tiny_config(corpus).model).eval()
    wave = _wave(24000 + 77)
    latent = encode_clip(model, wave)
    for levels in (None, 1, 2):
        assert np.array_equal(decode_latent(model, latent, levels, wave.size),
                              reconstruct(model, wave, levels)), levels
    # bf16 autocast (the CUDA path, here with device_type "cpu"): the same split, the same bits
    latent = encode_clip(model, wave, amp=True)
    assert np.array_equal(decode_latent(model, latent, 1, wave.size, amp=True),
                          reconstruct(model, wave, 1, amp=True))
    # a clip long enough to be encoded in chunks: the same split, the same bits
    monkeypatch.setattr(inference, "CHUNK_SECONDS", 0.2)
    latent = encode_clip(model, wave)
    assert np.array_equal(decode_latent(model, latent, 1, wave.size), reconstruct(model, wave, 1))


def test_a_snapshot_is_the_model_at_its_step_and_publishing_never_touches_the_held_copy(corpus):
    from vqstudio.train.trainer import Trainer

    trainer = Trainer(tiny_config(corpus))
    wave = _wave(12000)
    try:
        snapshots = WeightSnapshots()
        assert snapshots.hold(timeout=0) is None  # nothing published yet
        for _ in range(3):
            trainer.step()
        assert snapshots.publish(trainer.model, (trainer.step_count, 0))
        assert not snapshots.publish(trainer.model, (trainer.step_count, 0))  # already that step
        held, key = snapshots.hold()
        assert key == (3, 0) and not held.training
        at_three = trainer.reconstruct(wave)
        assert np.array_equal(reconstruct(held, wave), at_three)
        # Training goes on and publishes while the reader holds step 3: the other copy is
        # written, the held one keeps step 3's weights and buffers (EMA codebooks included).
        for _ in range(3):
            trainer.step()
            snapshots.publish(trainer.model, (trainer.step_count, 0))
        assert not np.array_equal(trainer.reconstruct(wave), at_three)
        again, key = snapshots.hold(newest=False)
        assert again is held and key == (3, 0)
        assert np.array_equal(reconstruct(held, wave), at_three)
        newest, key = snapshots.hold()
        assert newest is not held and key == (6, 0)
        assert np.array_equal(reconstruct(newest, wave), trainer.reconstruct(wave))
        for mine, theirs in zip(newest.buffers(), trainer.model.buffers()):
            assert torch.equal(mine, theirs)
        assert all(not p.requires_grad for p in newest.parameters())
    finally:
        trainer.close()


def test_a_reader_waiting_for_a_first_snapshot_is_released_by_close():
    snapshots = WeightSnapshots()
    got: list = []
    reader = threading.Thread(target=lambda: got.append(snapshots.hold(timeout=30)))
    reader.start()
    snapshots.close()
    reader.join(5)
    assert not reader.is_alive() and got == [None]


@pytest.mark.gui
def test_the_worker_answers_from_the_snapshot_of_a_stated_step(qtbot, corpus, tmp_path):
    from vqstudio.experiments.checkpoint_ref import resolve_ref
    from vqstudio.experiments.corpus_eval import load_model

    worker = attached_worker()
    results: list[dict] = []
    errors: list[str] = []
    worker.result.connect(results.append)
    worker.error.connect(errors.append)
    wave = _wave(9000, seed=3)
    run = tmp_path / "run"
    try:
        worker.start(tiny_config(corpus), run)
        qtbot.waitUntil(lambda: worker.live is not None and worker.store.current_step >= 2,
                        timeout=WAIT_MS)

        def ask(**args) -> dict:
            before = len(results)
            ident = worker.command("reconstruct", wave=wave, tag="t", **args)
            qtbot.waitUntil(lambda: len(results) > before, timeout=WAIT_MS)
            answer = results[before]
            assert answer["id"] == ident and answer["tag"] == "t" and not answer.get("error")
            assert answer["audio"].shape == wave.shape and answer["sample_rate"] == 24000
            return answer

        first = ask(levels=None)
        served = worker.live.timings[-1]
        assert served["encoded"] == 1.0  # a new clip: encoded through the newest weights
        qtbot.waitUntil(lambda: worker.store.current_step >= first["step"] + 2, timeout=WAIT_MS)
        # Another level count compares levels at the step heard, from the latent kept for it.
        other = ask(levels=1, same_step=True)
        assert other["step"] == first["step"] and worker.live.timings[-1]["encoded"] == 0.0
        # Without same_step: the newest weights published (at most 50 x a copy's cost apart).
        qtbot.waitUntil(lambda: worker.live.snapshots.latest_key[0] > first["step"], timeout=WAIT_MS)
        newer = ask(levels=1)
        assert newer["step"] > first["step"]

        # Paused, the answer is the model at the paused step: the checkpoint the stop writes
        # there reconstructs the clip to the same bits.
        with qtbot.waitSignal(worker.state_changed, check_params_cb=lambda s: s == "paused",
                              timeout=WAIT_MS):
            worker.pause()
        paused_at = worker.store.current_step
        answer = ask(levels=2)
        assert answer["step"] == paused_at
        # A level count the model lacks is a readable refusal; the run goes on.
        before = len(results)
        worker.command("reconstruct", wave=wave, levels=9)
        qtbot.waitUntil(lambda: len(results) > before, timeout=WAIT_MS)
        assert "1..2" in results[before]["error"] and any("1..2" in e for e in errors)
        assert worker.stop(save=True)
    finally:
        worker.stop(save=False)
    assert worker.live is None
    model, step = load_model(resolve_ref(str(run)))
    assert step == paused_at
    assert np.array_equal(reconstruct(model, wave, 2), answer["audio"])


def _live(model: Codec):
    """A LiveReconstruction over snapshots of ``model`` published as step 5, and its answers."""
    from vqstudio.app.live_reconstruction import LiveReconstruction

    snapshots = WeightSnapshots()
    snapshots.publish(model, (5, 0))
    answers: list[dict] = []
    arrived = threading.Condition()

    def deliver(answer: dict) -> None:
        with arrived:
            answers.append(answer)
            arrived.notify_all()

    live = LiveReconstruction(snapshots, deliver, (24000, model.hop, "cpu", False), pin=False)

    def ask(wave, levels=None, same_step=True, ident=[0]) -> dict:
        ident[0] += 1
        live.ask(ident[0], {"wave": wave, "levels": levels, "same_step": same_step})
        with arrived:
            assert arrived.wait_for(lambda: any(a["id"] == ident[0] for a in answers), 60)
        answer = next(a for a in answers if a["id"] == ident[0])
        assert not answer.get("error"), answer
        return answer

    return live, snapshots, ask


def _until(condition, seconds: float = 60.0) -> None:
    import time

    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_other_level_counts_are_decoded_ahead_and_answered_to_the_bit(corpus):
    torch.manual_seed(0)
    model = Codec(tiny_config(corpus).model).eval()  # 2 levels
    wave = _wave(24000 + 77, seed=5)
    live, snapshots, ask = _live(model)
    try:
        first = ask(wave, levels=1, same_step=False)
        assert live.timings[-1]["encoded"] == 1.0 and live.timings[-1]["ahead"] == 0.0
        _until(lambda: live.ahead_pending() == 0)
        # the other level count (all levels) was decoded while nothing waited: served from it
        full = ask(wave, levels=None)
        assert (live.timings[-1]["encoded"], live.timings[-1]["ahead"]) == (0.0, 1.0)
        assert np.array_equal(full["audio"], reconstruct(model, wave))
        again = ask(wave, levels=1)
        assert live.timings[-1]["ahead"] == 1.0
        assert np.array_equal(again["audio"], first["audio"])
        assert np.array_equal(again["audio"], reconstruct(model, wave, 1))
        # answers are copies: what the receiver does to one never reaches the next
        again["audio"][:] = 0
        assert np.array_equal(ask(wave, levels=1)["audio"], first["audio"])

        # new weights at a new step: nothing kept from the old step is served
        with torch.no_grad():
            for p in model.decoder.parameters():
                p.mul_(0.9)
        snapshots.publish(model, (6, 0))
        newer = ask(wave, levels=None, same_step=False)
        assert newer["step"] == 6 and live.timings[-1]["ahead"] == 0.0
        assert np.array_equal(newer["audio"], reconstruct(model, wave))
        # another clip at once (ahead work of the last one may be pending): its own answer
        other = _wave(12000, seed=6)
        assert np.array_equal(ask(other, levels=1)["audio"], reconstruct(model, other, 1))
        assert live.timings[-1]["encoded"] == 1.0
    finally:
        live.close()
    # the helper that decoded ahead (lower priority, the same core) ends with the thread
    assert not [t.name for t in threading.enumerate() if "levels-ahead" in t.name]


def test_decoding_ahead_stops_at_its_budget(corpus, monkeypatch):
    from vqstudio.app import levels_ahead

    monkeypatch.setattr(levels_ahead, "AHEAD_CPU_S", 0.0)
    torch.manual_seed(0)
    model = Codec(tiny_config(corpus).model).eval()
    wave = _wave(12000, seed=7)
    live, _snapshots, ask = _live(model)
    try:
        ask(wave, levels=1, same_step=False)
        assert live.ahead_pending() == 0
        full = ask(wave, levels=None)
        assert live.timings[-1]["ahead"] == 0.0  # decoded when asked, not ahead
        assert np.array_equal(full["audio"], reconstruct(model, wave))
    finally:
        live.close()
