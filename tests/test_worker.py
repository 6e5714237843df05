"""The training worker with a real trainer on real files: changes land at the step the trainer
reports, pause really stops steps (and still serves commands), clean stops leave a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import attached_worker, tiny_config
from vqstudio.app.store import GrowableArray
from vqstudio.train.runfolder import RunFolder

pytestmark = pytest.mark.gui

WAIT_MS = 60_000


@pytest.fixture
def worker(qtbot):
    worker = attached_worker()
    events: list[dict] = []
    results: list[dict] = []
    errors: list[str] = []
    states: list[str] = []
    worker.events.connect(events.extend)
    worker.result.connect(results.append)
    worker.error.connect(errors.append)
    worker.state_changed.connect(states.append)
    worker.seen = {"events": events, "results": results, "errors": errors, "states": states}
    yield worker
    worker.stop(save=False)


def _wait_for_step(qtbot, worker, step: int) -> None:
    qtbot.waitUntil(lambda: worker.store.current_step >= step, timeout=WAIT_MS)


def test_weight_change_takes_effect_at_the_reported_step(qtbot, worker, corpus, tmp_path):
    run = tmp_path / "run"
    worker.start(tiny_config(corpus), run)
    _wait_for_step(qtbot, worker, 3)
    before = worker.store.weights["commitment"]
    assert before == pytest.approx(0.25)

    with qtbot.waitSignal(worker.store.weights_confirmed, timeout=WAIT_MS) as confirmed:
        worker.set_weights({"commitment": 0.75})
    assert confirmed.args[0] == {"commitment": 0.75}
    change = next(e for e in worker.store.events if e["kind"] == "weights")
    applied_at = change["step"]
    assert change["changes"]["commitment"] == [pytest.approx(0.25), pytest.approx(0.75)]
    _wait_for_step(qtbot, worker, applied_at + 3)
    assert worker.stop(save=True)

    # metrics.csv (one row per step in the tiny configuration) says the same: rows up to the
    # event's step trained with the old weight, every row after it with the new one.
    columns = RunFolder(run).read_metrics()
    steps = np.asarray(columns["step"])
    weight = np.asarray(columns["weight/commitment"])
    assert np.all(weight[steps <= applied_at] == pytest.approx(0.25))
    assert np.all(weight[steps > applied_at] == pytest.approx(0.75))
    assert (steps > applied_at).sum() >= 3
    # The store saw the same history through the batched scalar signals.
    history = worker.store.weight_history["commitment"].view()
    store_steps = worker.store.steps.view()
    assert np.all(history[store_steps > applied_at] == pytest.approx(0.75))


def test_pause_stops_steps_and_still_serves_reconstructions(qtbot, worker, corpus, tmp_path):
    worker.start(tiny_config(corpus), tmp_path / "run")
    _wait_for_step(qtbot, worker, 2)

    with qtbot.waitSignal(worker.state_changed, check_params_cb=lambda s: s == "paused", timeout=WAIT_MS):
        worker.pause()
    assert worker.is_paused
    paused_at = worker.store.current_step
    rows = len(worker.store.steps)
    qtbot.wait(500)
    assert worker.store.current_step == paused_at
    assert len(worker.store.steps) == rows
    assert any(e["kind"] == "pause" and e["step"] == paused_at for e in worker.seen["events"])

    # Commands are answered while paused: a clip of any length comes back just as long.
    wave = np.random.default_rng(0).normal(0, 0.1, 7919).astype(np.float32)
    with qtbot.waitSignal(worker.result, timeout=WAIT_MS) as got:
        cmd = worker.command("reconstruct", wave=wave, levels=1, tag="check")
    result = got.args[0]
    assert result["id"] == cmd and result["tag"] == "check" and result["levels"] == 1
    assert result["audio"].shape == wave.shape and result["audio"].dtype == np.float32
    assert np.isfinite(result["audio"]).all()
    assert worker.store.current_step == paused_at

    worker.resume()
    _wait_for_step(qtbot, worker, paused_at + 2)
    assert "running" in worker.seen["states"][worker.seen["states"].index("paused"):]
    assert any(e["kind"] == "resume" and e["step"] == paused_at for e in worker.seen["events"])


def test_probe_heavy_and_a_refused_request(qtbot, worker, corpus, tmp_path):
    worker.start(tiny_config(corpus), tmp_path / "run")
    with qtbot.waitSignal(worker.probe, timeout=WAIT_MS) as probe:
        pass
    payload = probe.args[0]
    assert payload["sample_rate"] == 24000
    assert payload["original"].shape == payload["reconstruction"].shape
    assert payload["original"].size == 12000  # probe_seconds=0.5 at 24 kHz
    qtbot.waitUntil(lambda: len(worker.store.codebook_steps) > 0, timeout=WAIT_MS)
    assert worker.store.entropy.view().shape[1] == 2  # two levels in the tiny model
    assert worker.store.usage.shape == (2, 32)

    # A wrong request is a readable notice and a result carrying the error; training goes on.
    step = worker.store.current_step
    with qtbot.waitSignal(worker.result, timeout=WAIT_MS) as got:
        worker.command("reconstruct", wave=np.zeros(4800, np.float32), levels=9)
    assert "levels" in got.args[0]["error"] and "1..2" in got.args[0]["error"]
    assert any("1..2" in e for e in worker.seen["errors"])
    _wait_for_step(qtbot, worker, step + 2)

    # A value the trainer cannot use is reported in one line; the run goes on.
    step = worker.store.current_step
    with qtbot.waitSignal(worker.error, timeout=WAIT_MS) as failed:
        worker.set_setting("quantizer_dropout", "lots")
    assert "could not be applied" in failed.args[0] and "\n" not in failed.args[0]
    _wait_for_step(qtbot, worker, step + 2)
    assert worker.is_running


def test_a_bad_data_folder_is_a_notice_not_a_crash(qtbot, worker, tmp_path):
    config = tiny_config(tmp_path / "nowhere")
    with qtbot.waitSignal(worker.finished, timeout=WAIT_MS):
        worker.start(config, tmp_path / "run")
    assert worker.seen["errors"] and "nowhere" in worker.seen["errors"][0]
    assert worker.seen["states"][-1] == "stopped"
    assert worker.stop()


def test_stop_saves_a_checkpoint_and_open_run_resumes_from_it(qtbot, worker, corpus, tmp_path):
    run = tmp_path / "run"
    worker.start(tiny_config(corpus), run)
    _wait_for_step(qtbot, worker, 3)
    assert worker.stop(save=True)
    assert not worker.is_running
    saved = RunFolder(run).read_events()
    checkpoint = [e for e in saved if e["kind"] == "checkpoint"][-1]
    assert (run / "checkpoints" / checkpoint["file"]).is_file()

    with qtbot.waitSignal(worker.started, timeout=WAIT_MS) as started:
        worker.open_run(run)
    assert started.args[0]["step"] == checkpoint["step"]
    assert worker.stop(save=False)


def test_growable_array_keeps_rows_across_growth():
    scalars = GrowableArray(capacity=2)
    for i in range(5):
        scalars.append(i)
    scalars.append([5.0, 6.0, 7.0])
    assert scalars.view().tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    vectors = GrowableArray(capacity=1, vector=True)
    vectors.append([1.0, 2.0])
    vectors.append([[3.0, 4.0], [5.0, 6.0]])
    assert vectors.view().shape == (3, 2) and vectors.view()[2].tolist() == [5.0, 6.0]
    vectors.truncate(1)
    assert vectors.view().tolist() == [[1.0, 2.0]]
