"""The GUI's training loop without Qt: a real trainer on real files, the messages collected in a
list. Pause is the trainer's, commands are answered once by id (also while paused), events are
sent once each and are exactly what events.jsonl holds."""

from __future__ import annotations

import threading
import time

import numpy as np

from helpers import tiny_config
from vqstudio.app.training_loop import TrainingLoop
from vqstudio.train.runfolder import RunFolder
from vqstudio.train.trainer import Trainer


class Inbox:
    """What the loop emits, in order, readable from the test thread."""

    def __init__(self):
        self.items: list[tuple[str, object]] = []
        self.lock = threading.Lock()

    def __call__(self, name, payload):
        with self.lock:
            self.items.append((name, payload))

    def of(self, name):
        with self.lock:
            return [p for n, p in self.items if n == name]

    def wait(self, condition, what, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)


def test_the_loop_drives_the_trainer_and_answers_each_command_once(corpus, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(corpus), run)
    inbox = Inbox()
    loop = TrainingLoop(trainer, inbox, probe_seconds=0.25)
    thread = threading.Thread(target=lambda: (loop.run(), loop.stopping(save=True), loop.flush(True)),
                              name="training-loop")
    thread.start()
    try:
        assert inbox.of("started")[0]["step"] == 0 and inbox.of("started")[0]["rvq_levels"] == 2
        inbox.wait(lambda: any(b["current_step"] >= 3 for b in inbox.of("scalars")), "three steps")
        trainer.mailbox.pause()
        inbox.wait(lambda: inbox.of("state")[-1] == "paused", "the paused state")
        paused_at = trainer.step_count
        wave = np.random.default_rng(1).normal(0, 0.1, 3001).astype(np.float32)
        good = trainer.mailbox.command("reconstruct", wave=wave, levels=1, tag="a")
        bad = trainer.mailbox.command("reconstruct", wave=wave, levels=5, tag="b")
        saved = trainer.mailbox.command("save_checkpoint")
        inbox.wait(lambda: len(inbox.of("result")) == 2, "two results while paused")
        inbox.wait(lambda: any(e.get("id") == saved for b in inbox.of("events") for e in b), "the save")
        assert trainer.step_count == paused_at
        results = {r["id"]: r for r in inbox.of("result")}
        assert results[good]["audio"].shape == wave.shape and results[good]["step"] == paused_at
        assert "1..2" in results[bad]["error"] and any("1..2" in e for e in inbox.of("error"))
        trainer.mailbox.resume()
        inbox.wait(lambda: trainer.step_count >= paused_at + 2, "steps after the resume")
        assert inbox.of("probe")[0]["reconstruction"].shape == (6000,)
    finally:
        trainer.mailbox.stop()
        thread.join(60)
    trainer.close()
    assert not thread.is_alive()

    sent = [e for batch in inbox.of("events") for e in batch]
    on_disk = RunFolder(run).read_events()
    assert sent == on_disk  # every event once, in order; nothing repeated, nothing missed
    kinds = [e["kind"] for e in sent]
    assert kinds.count("pause") == kinds.count("resume") == 1
    assert kinds[-2:] == ["stop", "checkpoint"] and sent[-1]["step"] == trainer.step_count
    assert len(inbox.of("result")) == 2
    assert inbox.of("state") == ["running", "paused", "running"]
    steps = np.concatenate([b["step"] for b in inbox.of("scalars")])
    assert steps.tolist() == list(range(1, trainer.step_count + 1))  # each row once
