"""The command line, run as a user runs it: real subprocesses on real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from helpers import REPO, TINY, run_cli, tiny_sets, write_corpus
from vqstudio.train.checkpoint import latest_checkpoint, load_checkpoint


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = write_corpus(tmp_path_factory.mktemp("corpus"), files=3)
    (folder / "broken.wav").write_text("this is not audio")
    return folder


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "r"
    result = run_cli("train", "--data", str(corpus), "--run", str(run), "--steps", "6", *tiny_sets())
    assert result.returncode == 0, result.stderr
    return run, result


def _one_line_error(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_presets_lists_every_preset():
    result = run_cli("presets")
    assert result.returncode == 0
    for name in ("tiny-cpu", "seed-baseline", "speech-24k", "music-44k"):
        assert name in result.stdout
    assert len(result.stdout.strip().splitlines()) >= 4


def test_train_names_bad_files_and_goes_on(trained):
    run, result = trained
    assert "broken.wav" in result.stdout
    frame = pd.read_csv(run / "metrics.csv")
    assert frame["step"].tolist() == list(range(1, 7))
    assert "mel_l1/512" in frame.columns and "weight/commitment" in frame.columns
    assert load_checkpoint(latest_checkpoint(run / "checkpoints"))["step"] == 6
    assert (run / "config.toml").is_file() and (run / "events.jsonl").is_file()


def test_train_again_resumes_or_says_done(trained):
    run, _ = trained
    again = run_cli("train", "--run", str(run), "--steps", "6")
    assert again.returncode == 0 and "already at step 6" in again.stdout


def test_reconstruct_writes_a_file_of_the_right_length(trained, corpus, tmp_path):
    run, _ = trained
    src = corpus / "clip1.flac"
    for levels in ("1", "2"):
        out = tmp_path / f"out{levels}.wav"
        result = run_cli("reconstruct", "--run", str(run), "--levels", levels, str(src), str(out))
        assert result.returncode == 0, result.stderr
        wave, sr = sf.read(out)
        assert sr == 24000 and len(wave) == sf.info(src).frames
    error = _one_line_error(run_cli("reconstruct", "--run", str(run), "--levels", "9", str(src),
                                    str(tmp_path / "x.wav")))
    assert "--levels 9" in error and "1..2" in error


def test_eval_prints_a_table_and_writes_json(trained, corpus, tmp_path):
    run, _ = trained
    out = tmp_path / "eval.json"
    result = run_cli("eval", "--run", str(run), "--data", str(corpus), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert "SI-SDR" in result.stdout and "noise floor" in result.stdout
    figures = json.loads(out.read_text())
    for key in ("si_sdr_db", "mel_distance", "mrstft_distance", "noise_floor_dbfs", "band_error_db",
                "codebook_entropy"):
        assert key in figures
    assert len(figures["codebook_entropy"]) == 2
    assert "broken.wav" in result.stderr


@pytest.mark.parametrize(
    "args,needle",
    [
        (["train", "--run", "{tmp}/r", "--preset", "nope"], "no preset named 'nope'"),
        (["train", "--run", "{tmp}/r", "--set", "train.lr=-1"], "train.lr"),
        (["train", "--run", "{tmp}/r", "--set", "model.hop=100"], "does not match the encoder"),
        (["train", "--run", "{tmp}/r", "--data", "{tmp}/empty"], "no audio files in"),
        (["reconstruct", "--run", "{tmp}/nothing", "a.wav", "b.wav"], "not a run folder"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(args, needle, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no audio here")
    result = run_cli(*[a.format(tmp=tmp_path) for a in args])
    assert needle.lower() in _one_line_error(result).lower()


def test_refuses_a_crafted_checkpoint(trained, corpus, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"model": Evil(), "step": 1}))
    run, _ = trained
    result = run_cli("reconstruct", "--run", str(run), "--checkpoint", str(evil),
                     str(corpus / "clip0.wav"), str(tmp_path / "o.wav"))
    assert "refused" in _one_line_error(result)
    assert not (tmp_path / "pwned").exists()


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(corpus, tmp_path):
    run = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-m", "vqstudio", "train", "--data", str(corpus), "--run", str(run),
         "--steps", "100000", *tiny_sets()],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait until it is really training
            if (run / "metrics.csv").is_file() and len((run / "metrics.csv").read_text().splitlines()) > 3:
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "checkpoint saved" in out
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert state["step"] >= 3
    assert pd.read_csv(run / "metrics.csv")["step"].max() == state["step"]


def test_a_killed_run_leaves_a_loadable_checkpoint(corpus, tmp_path):
    """SIGKILL at arbitrary moments while checkpoints are written every step."""
    run = tmp_path / "r"
    cmd = [sys.executable, "-m", "vqstudio", "train", "--data", str(corpus), "--run", str(run),
           "--steps", "100000", *tiny_sets(), "--set", "train.checkpoint_every=1"]
    for delay in (0.05, 0.13, 0.29):
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            checkpoints = run / "checkpoints"
            while time.monotonic() < deadline:
                if checkpoints.is_dir() and latest_checkpoint(checkpoints) is not None:
                    break
                time.sleep(0.05)
            time.sleep(delay)  # then kill it somewhere in the middle of a step or a save
        finally:
            proc.kill()
            proc.wait()
        state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
        assert state["step"] >= 1


def test_torchrun_two_processes_write_one_consistent_run(corpus, tmp_path):
    run = tmp_path / "ddp"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
         "29517", "-m", "vqstudio", "train", "--data", str(corpus), "--run-dir", str(run),
         "--steps", "4", *tiny_sets()],
        cwd=REPO, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    frame = pd.read_csv(run / "metrics.csv")
    assert frame["step"].tolist() == [1, 2, 3, 4]  # rank 0 alone wrote it: no duplicate rows
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events].count("start") == 1
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert state["step"] == 4
    assert not any(k.startswith("module.") for k in state["model"])


def test_app_without_a_display_says_how_to_run_it():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "main.py"], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env=env)
    line = _one_line_error(result)
    assert "no display" in line and "xvfb-run" in line
