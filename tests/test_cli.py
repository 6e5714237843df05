"""The command line, run as a user runs it: real subprocesses on real files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import soundfile as sf

from helpers import REPO, TORCHRUN_ENV, run_cli, tiny_sets, torchrun_train, write_corpus
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


def _train_in_background(corpus, run, *sets: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "vqstudio", "train", "--data", str(corpus), "--run", str(run),
         "--steps", "100000", *tiny_sets(), *sets],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _rows(run) -> int:
    path = run / "metrics.csv"
    return len(path.read_text().splitlines()) - 1 if path.is_file() else 0


def _events(run) -> list[dict]:
    path = run / "events.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [json.loads(line) for line in lines if line.endswith("}")]


def _stop_and_check(proc: subprocess.Popen, run, signum: int) -> None:
    """Send a stop signal: the process finishes its step, saves, exits 0 with one line saying
    where, and the checkpoint is at the last step logged."""
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"Stopped by {signal.Signals(signum).name} at step {state['step']};"), out
    assert f"step-{state['step']:08d}.pt" in last
    assert pd.read_csv(run / "metrics.csv")["step"].max() == state["step"]
    assert "nan" not in out  # the progress lines never show a loss before one is known


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGHUP], ids=["SIGINT", "SIGHUP"])
def test_a_stop_signal_saves_a_checkpoint_at_the_step_reached_and_exits_0(corpus, tmp_path, signum):
    run = tmp_path / "r"
    proc = _train_in_background(corpus, run)
    try:
        _wait_for(lambda: _rows(run) > 3, "training to start")
        _stop_and_check(proc, run, signum)
    finally:
        proc.kill()


def test_sigusr1_saves_and_goes_on_then_sigterm_stops_like_ctrl_c(corpus, tmp_path):
    run = tmp_path / "r"
    proc = _train_in_background(corpus, run)
    try:
        _wait_for(lambda: _rows(run) > 2, "training to start")
        proc.send_signal(signal.SIGUSR1)
        _wait_for(lambda: any(e["kind"] == "checkpoint" and e.get("reason") == "SIGUSR1"
                              for e in _events(run)), "the SIGUSR1 checkpoint")
        saved = next(e for e in _events(run) if e.get("reason") == "SIGUSR1")
        assert (run / "checkpoints" / saved["file"]).is_file()
        _wait_for(lambda: _rows(run) > saved["step"] + 3, "training to go on")
        assert proc.poll() is None
        _stop_and_check(proc, run, signal.SIGTERM)
    finally:
        proc.kill()


def test_kill_9_loses_at_most_one_autosave_interval(corpus, tmp_path):
    """checkpoint_every is far away; the wall-clock autosave (0.6 s here) bounds what is lost."""
    run, minutes = tmp_path / "r", 0.01
    proc = _train_in_background(corpus, run, "--set", f"train.checkpoint_minutes={minutes}")
    try:
        _wait_for(lambda: sum(e.get("reason") == "autosave" for e in _events(run)) >= 3, "3 autosaves")
    finally:
        proc.kill()  # SIGKILL: nothing of ours runs
        proc.wait()
    saved = [e for e in _events(run) if e["kind"] == "checkpoint"]
    assert all(e["reason"] == "autosave" for e in saved)
    gaps = [b["time"] - a["time"] for a, b in zip(saved, saved[1:])]
    assert all(gap < 60 * minutes + 1.0 for gap in gaps), gaps
    reached = int(pd.read_csv(run / "metrics.csv")["step"].max())

    result = run_cli("train", "--run", str(run), "--steps", str(reached + 1))
    assert result.returncode == 0, result.stderr
    resume = next(e for e in _events(run) if e["kind"] == "resume")
    assert resume["file"] == saved[-1]["file"]
    # What came after that checkpoint is kept aside, not deleted, and counted in the event.
    aside = run / "rolled_back" / f"metrics-after-step-{saved[-1]['step']:08d}.csv"
    lost = pd.read_csv(aside) if aside.is_file() else pd.DataFrame({"wall_time": []})
    assert resume["lost_steps"] == reached - saved[-1]["step"] == len(lost)
    if len(lost):
        assert lost["wall_time"].max() - saved[-1]["time"] < 60 * minutes + 1.0
    assert pd.read_csv(run / "metrics.csv")["step"].tolist() == list(range(1, reached + 2))


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
    result = subprocess.run(torchrun_train(corpus, run, 4, port=29517), cwd=REPO,
                            capture_output=True, text=True, timeout=240, env=TORCHRUN_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    frame = pd.read_csv(run / "metrics.csv")
    assert frame["step"].tolist() == [1, 2, 3, 4]  # rank 0 alone wrote it: no duplicate rows
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events].count("start") == 1
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert state["step"] == 4
    assert not any(k.startswith("module.") for k in state["model"])


def test_torchrun_job_stopped_by_a_group_sigterm_saves_once_at_the_step_all_ranks_reached(corpus, tmp_path):
    # What a scheduler does: SIGTERM to the job's process group. Each worker gets it directly and
    # again from torchrun's agent; both ranks stop at one step and rank 0 saves it. (torchrun itself
    # then exits with its own signal error: that is the launcher's behaviour, not ours.)
    run = tmp_path / "ddp"
    proc = subprocess.Popen(torchrun_train(corpus, run, 100000, port=29519), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env=TORCHRUN_ENV)
    try:
        deadline = time.monotonic() + 240
        metrics = run / "metrics.csv"
        while time.monotonic() < deadline and proc.poll() is None:
            if metrics.exists() and len(metrics.read_text().splitlines()) > 3:
                break
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    steps = pd.read_csv(run / "metrics.csv")["step"].tolist()
    assert steps == list(range(1, len(steps) + 1))  # one writer, no repeats
    assert state["step"] == steps[-1] >= 3
    assert f"Stopped by SIGTERM at step {state['step']}; checkpoint saved" in out, out[-3000:]
    assert out.count("checkpoint saved") == 1, out[-3000:]


def test_a_stop_signal_delivered_twice_at_once_is_one_request_a_later_one_forces_the_exit():
    from vqstudio.train.stopping import StopSignals

    with StopSignals() as signals:
        signals.repeat_window_s = 0.5
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # the same request (torchrun forwarding a group signal)
        assert signals.stop_signal == "SIGTERM"
        time.sleep(0.6)
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the handler runs at the next bytecode boundary


def test_app_without_a_display_says_how_to_run_it():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "main.py"], cwd=REPO, capture_output=True, text=True,
                            timeout=60, env=env)
    line = _one_line_error(result)
    assert "no display" in line and "xvfb-run" in line


def _report(step: int, terms: dict | None = None):
    from vqstudio.train.report import StepReport

    return StepReport(step=step, wall_time=0.0, elapsed=0.0, terms=terms or {}, weights={}, lr=1e-3,
                      grad_norm=float("nan"), steps_per_second=10.0, audio_seconds_per_second=5.0)


def test_progress_is_tqdm_on_a_terminal_plain_lines_otherwise_and_never_shows_nan():
    import io

    from vqstudio.train.progress import Progress

    plain = io.StringIO()
    progress = Progress(0, 3, stream=plain)
    progress.update(_report(1))  # no logged loss yet: none shown, not "nan"
    assert plain.getvalue() == "step 1/3  5.0 audio-s/s\n"
    progress.update(_report(2, {"total": 0.5}))  # within the plain interval: quiet
    progress.update(_report(3, {"total": 0.25}))  # the last step always prints
    progress.close()
    assert plain.getvalue().splitlines()[-1] == "step 3/3  loss 0.2500  5.0 audio-s/s"

    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # 120 columns
    with os.fdopen(slave, "w") as terminal:
        progress = Progress(0, 3, stream=terminal)
        for step in (1, 2, 3):
            progress.update(_report(step, {"total": 0.5} if step > 1 else None))
        progress.close()
        terminal.flush()
    import select

    chunks = []
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the terminal's other end is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    shown = b"".join(chunks).decode()
    assert "\r" in shown and "3/3" in shown and "loss=0.5000" in shown, shown
    assert "nan" not in shown
