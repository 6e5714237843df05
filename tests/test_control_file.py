"""Steering a run from another process: control.jsonl written by `vqstudio set` (a real
subprocess) or appended by hand, read by the trainer between steps, every line logged as applied
or refused with its step; also under torchrun, where all ranks change at the same step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import (REPO, TORCHRUN_ENV, one_line_error, run_cli, run_clis, tiny_config, tiny_sets,
                     torchrun_train, write_corpus)
from vqstudio.train.control_file import CONTROL_FILE, ControlReader, append_changes, resolve
from vqstudio.train.settings import SETTINGS
from vqstudio.train.trainer import Trainer


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), files=2)


def _events(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]


def _settle() -> None:
    time.sleep(0.12)  # the trainer stats the control file at most every 0.1 s (steering.POLL_SECONDS)


def test_names_resolve_to_live_settings():
    terms = ["mrstft", "mel_l1/1024", "waveform_mse"]
    assert resolve("mrstft", SETTINGS, terms) == ("weights", "mrstft")
    assert resolve("loss.weights.mel_l1/1024", SETTINGS, terms) == ("weights", "mel_l1/1024")
    assert resolve("weight/waveform_mse", SETTINGS, terms) == ("weights", "waveform_mse")
    assert resolve("lr", SETTINGS, terms) == ("lr", "") == resolve("train.lr", SETTINGS, terms)
    assert resolve("model.codebook_size", SETTINGS, terms) is None
    assert resolve("weights", SETTINGS, terms) is None and resolve("nonsense", SETTINGS, terms) is None


def test_trainer_applies_each_line_once_refuses_bad_ones_and_goes_on(corpus, tmp_path):
    run = tmp_path / "run"
    trainer = Trainer(tiny_config(corpus), run)
    try:
        for _ in trainer.steps(until=2):
            pass
        lines = append_changes(run, [("lr", 5e-4), ("mrstft", 2.0), ("loss.weights.mel_l1/256", 3.0),
                                     ("nonsense", 1), ("lr", "fast"), ("lr", -1), ("model.codebook_size", 8),
                                     ("loss.mel_norm", "tanh")])
        with (run / CONTROL_FILE).open("a") as handle:
            handle.write("this is not json\n")
            handle.write('{"id": "late", "setting": "lr", "val')  # still being written
        _settle()
        for _ in trainer.steps(until=4):
            pass
        events = [e for e in _events(run) if e.get("control")]
        by_id = {e["control"]: e for e in events}
        assert by_id[lines[0]["id"]]["kind"] == "lr" and by_id[lines[0]["id"]]["new"] == 5e-4
        assert by_id[lines[1]["id"]]["changes"] == {"mrstft": [1.0, 2.0]}
        assert by_id[lines[2]["id"]]["changes"]["mel_l1/256"][1] == 3.0
        assert all(by_id[line["id"]]["step"] == 2 for line in lines)  # all at the step after which they came
        mel_norm = by_id[lines[7]["id"]]
        assert mel_norm["kind"] == "mel_norm" and mel_norm["new"] == "tanh", mel_norm
        assert trainer.config.loss.mel_norm == "tanh"
        for line, words in zip(lines[3:7], ("not a live setting", "not a usable value", "> 0",
                                            "not a live setting")):
            assert by_id[line["id"]]["kind"] == "refused" and words in by_id[line["id"]]["reason"]
        junk = [e for e in events if str(e["control"]).startswith("line@")]
        assert len(junk) == 1 and "not JSON" in junk[0]["reason"]
        assert "late" not in by_id  # the half line is waited for, not misread
        assert trainer.weights["mrstft"] == 2.0 and trainer.base_lr == 5e-4 and trainer.step_count == 4

        with (run / CONTROL_FILE).open("a") as handle:
            handle.write('ue": 2e-4}\n')
        _settle()
        for _ in trainer.steps(until=5):
            pass
        assert [e["new"] for e in _events(run) if e.get("control") == "late"] == [2e-4]
        trainer.save_checkpoint()
    finally:
        trainer.close()

    # Written while nobody trains it: applied on resume; what was served before is not again.
    more = append_changes(run, [("mrstft", 4.0)])
    resumed = Trainer(tiny_config(corpus), run)
    try:
        for _ in resumed.steps(until=6):
            pass
    finally:
        resumed.close()
    served = [e["control"] for e in _events(run) if e.get("control")]
    assert served.count(more[0]["id"]) == 1 and served.count(lines[0]["id"]) == 1
    assert resumed.weights["mrstft"] == 4.0


def test_reader_notices_a_rewritten_control_file(tmp_path):
    append_changes(tmp_path, [("lr", 1e-3)])
    reader = ControlReader(tmp_path / CONTROL_FILE)
    assert [line.setting for line in reader.poll()] == ["lr"] and reader.poll() == []
    (tmp_path / CONTROL_FILE).unlink()
    append_changes(tmp_path, [("mrstft", 2)])
    assert [line.setting for line in reader.poll()] == ["mrstft"]


def _start_trainer(corpus: Path, run: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vqstudio", "train", "--data", str(corpus), "--run", str(run),
         "--steps", "100000", *tiny_sets()],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
    )


def test_vqstudio_set_steers_a_training_process_and_refuses_bad_names(corpus, tmp_path):
    run = tmp_path / "run"
    proc = _start_trainer(corpus, run)
    try:
        deadline = time.monotonic() + 120
        while not ((run / "trainer.lock").is_file() and (run / "metrics.csv").is_file()):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the trainer did not start"
            time.sleep(0.1)
        result, structural, misspelt = run_clis(  # side by side: the refusals write nothing
            ["set", "--run", str(run), "mrstft=2", "lr=5e-4", "--wait", "60"],
            ["set", "--run", str(run), "model.codebook_size=64"],
            ["set", "--run", str(run), "mrstfft=2"])
        assert result.returncode == 0, result.stderr
        assert f"pid {proc.pid}" in result.stdout
        assert "mrstft=2: applied at step" in result.stdout and "lr=0.0005: applied at step" in result.stdout
        applied = {e["kind"]: e for e in _events(run) if e.get("control")}
        assert applied["weights"]["changes"]["mrstft"] == [1.0, 2.0] and applied["lr"]["new"] == 5e-4

        line = one_line_error(structural)
        assert "cannot change while a run trains" in line and f"--from {run}" in line
        line = one_line_error(misspelt)
        assert "not a live setting" in line and "mrstft" in line
        assert proc.poll() is None  # still training
    finally:
        proc.terminate()
        proc.wait(60)
        proc.stderr.close()
    nothing, result = run_clis(["set", "--run", str(tmp_path / "nothing"), "lr=1e-4"],
                               ["set", "--run", str(run), "lr=2e-4"])
    assert "not a run folder" in one_line_error(nothing)
    assert result.returncode == 0 and "apply when it is resumed" in result.stdout


def test_torchrun_ranks_change_at_the_same_step(corpus, tmp_path):
    run = tmp_path / "ddp"
    run.mkdir()
    append_changes(run, [("lr", 3e-4), ("mrstft", 2.5)])  # waiting before the job starts
    result = subprocess.run(torchrun_train(corpus, run, 3, port=29531), cwd=REPO,
                            capture_output=True, text=True, timeout=300, env=TORCHRUN_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [e for e in _events(run) if e["kind"] == "ranks"]
    assert len(ranks) == 1 and ranks[0]["agree"] and ranks[0]["steps"] == [0, 0]
    assert ranks[0]["lr"] == [3e-4, 3e-4] and ranks[0]["weights"]["mrstft"] == [2.5, 2.5]


def test_vqstudio_set_on_an_older_or_damaged_run_folder_says_why(corpus, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "config.toml").write_text('[model]\nno_such_setting_any_more = 3\n')  # an older version's
    (old / "metrics.csv").write_text("step,total\n1,0.5\n")
    line = one_line_error(run_cli("set", "--run", str(old), "lr=1e-4"))
    assert str(old) in line or "config.toml" in line
    assert not (old / CONTROL_FILE).exists()  # nothing written
    line = one_line_error(run_cli("set", "--run", str(old), "lr"))
    assert "has no '='" in line


def test_reader_tells_a_recreated_file_of_the_same_size(tmp_path):
    path = tmp_path / CONTROL_FILE
    path.write_text('{"id": "aaaa", "setting": "lr", "value": 1}\n')
    reader = ControlReader(path)
    assert [line.id for line in reader.poll()] == ["aaaa"]
    path.unlink()
    path.write_text('{"id": "bbbb", "setting": "lr", "value": 2}\n')  # same size, likely the same inode
    os.utime(path, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))  # a coarse clock still moves
    assert [(line.id, line.value) for line in reader.poll()] == [("bbbb", 2)]
