"""Test helpers: small real audio corpora on disk and a tiny, fast model configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent

# A model small enough that a training step takes milliseconds on one core.
TINY = [
    "model.encoder_channels=4",
    "model.encoder_ratios=[2,4,5,6]",
    "model.hop=240",
    "model.n_fft=960",
    "model.latent_dim=16",
    "model.codebook_dim=16",
    "model.rvq_levels=2",
    "model.codebook_size=32",
    "model.decoder_dim=32",
    "model.decoder_conv_blocks=1",
    "model.attention_blocks=1",
    "model.attention_heads=2",
    "data.batch_size=2",
    "data.segment_seconds=0.25",
    "loss.mel_scales=[256,512]",
    "loss.mel_bins=[32,48]",
    "loss.mrstft_fft_sizes=[256,512]",
    "loss.mrstft_hops=[64,128]",
    "loss.mrstft_win_lengths=[256,512]",
    "train.log_every=1",
    "train.warmup_steps=0",
    "train.heavy_every=5",
    "train.validate_every=0",
    "train.checkpoint_every=1000",
    "loss.grad_share_every=0",
    "train.cpu_threads=1",
]


def write_corpus(folder: Path, files: int = 3, seconds: float = 1.0, sr: int = 24000,
                 seed: int = 0) -> Path:
    """Write a few real audio files: tones with vibrato, noise bursts and silent gaps."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    for i in range(files):
        f0 = 110.0 * (i + 2)
        tone = 0.3 * np.sin(2 * np.pi * f0 * t + 2.0 * np.sin(2 * np.pi * 5 * t))
        tone += 0.1 * np.sin(2 * np.pi * 3 * f0 * t)
        burst = rng.normal(0, 0.05, t.size) * (np.sin(2 * np.pi * 2 * t) > 0.7)
        wave = (tone + burst) * (np.sin(2 * np.pi * 1.5 * t) > -0.5)  # silent gaps
        suffix = ".wav" if i % 2 == 0 else ".flac"
        sf.write(folder / f"clip{i}{suffix}", wave.astype(np.float32), sr)
    return folder


def tiny_config(data: Path, extra: list[str] | None = None):
    from vqstudio.config import load_preset

    return load_preset("tiny-cpu", TINY + [f'data.path="{data}"'] + list(extra or []))


def run_cli(*args: str, timeout: float = 180, env: dict | None = None, **kwargs):
    """Run ``python -m vqstudio ARGS`` in a real subprocess; returns CompletedProcess."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "vqstudio", *args],
        capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO, **kwargs,
    )


def run_clis(*argvs: list[str], timeout: float = 240) -> list:
    """``run_cli`` for each argument list, all at once (each pays torch's import; side by side they
    share it across the cores); results in the order given."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(argvs)) as pool:
        return list(pool.map(lambda argv: run_cli(*argv, timeout=timeout), argvs))


def torchrun_train(corpus: Path, run: Path, steps: int, port: int) -> list[str]:
    """The argv of a 2-process CPU ``torchrun`` job training TINY on ``corpus`` into ``run``."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
            str(port), "-m", "vqstudio", "train", "--data", str(corpus), "--run-dir", str(run),
            "--steps", str(steps), *tiny_sets()]


# The environment of a torchrun job in the tests: unbuffered output, one OpenMP thread per rank.
TORCHRUN_ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def attached_worker(probe_seconds: float = 0.5):
    """A TrainingWorker with a RunStore attached to it (as ``worker.store``), as the window has."""
    from vqstudio.app.store import RunStore
    from vqstudio.app.worker import TrainingWorker

    worker = TrainingWorker(probe_seconds=probe_seconds)
    worker.store = RunStore()
    worker.store.attach(worker)
    return worker


def tiny_sets(data: Path | None = None) -> list[str]:
    """TINY as repeated ``--set`` arguments for the CLI."""
    out = []
    for item in TINY:
        out += ["--set", item]
    return out


def one_line_error(result) -> str:
    """The one stderr line of a CLI call that must fail as a user error (exit 2, no traceback)."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def train_tiny_run(root: Path, name: str = "r", steps: int = 8, checkpoint_every: int = 4) -> tuple[Path, Path]:
    """``vqstudio train`` a TINY run on two generated clips under ``root``, a checkpoint every
    ``checkpoint_every`` steps; returns (run folder, corpus folder)."""
    corpus = write_corpus(root / "corpus", files=2)
    run = root / name
    result = run_cli("train", "--data", str(corpus), "--run", str(run), "--steps", str(steps), *tiny_sets(),
                     "--set", f"train.checkpoint_every={checkpoint_every}")
    assert result.returncode == 0, result.stderr
    return run, corpus


def answer_next_dialog(answer) -> None:
    """Call ``answer(dialog)`` on the next modal dialog as soon as it is open (Qt tests)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    def poll():
        dialog = QApplication.activeModalWidget()
        if dialog is None:
            QTimer.singleShot(20, poll)
        else:
            answer(dialog)

    QTimer.singleShot(0, poll)


TERMS = ["waveform_mse", "codebook", "commitment"]  # the loss terms of write_run's rows


def write_run(folder, rows: int, *, seed: int = 0, batch: int = 2, segment: float = 0.25,
              start: int = 1, forked_from: dict | None = None, cut: bool = False):
    """A run folder as a trainer leaves it (config.toml, metrics.csv, events.jsonl), with ``rows``
    generated rows of decaying noisy losses; ``cut`` ends metrics.csv in half a row."""
    from vqstudio.train.runfolder import RunFolder

    config = tiny_config(folder.parent, [f"data.batch_size={batch}", f"data.segment_seconds={segment}"])
    config.forked_from = dict(forked_from or {})
    run = RunFolder.create(folder, config)
    rng = np.random.default_rng(seed)
    steps = np.arange(start, start + rows)
    header = ["step", "wall_time", "elapsed", "lr", "total", *TERMS]
    values = [steps, 1.7e9 + steps * 0.5, steps * 0.25 + 10.0, np.full(rows, 1e-3)]
    losses = [np.exp(-steps / 5e4) * (1 + i) * np.exp(rng.normal(0, 0.2, rows)) for i in range(3)]
    values += [sum(losses)] + losses
    lines = [",".join(header)] + [",".join(f"{v[i]:.7g}" for v in values) for i in range(rows)]
    text = "\n".join(lines) + "\n"
    if cut:
        text += "999999,1.7e9,12"  # a writer stopped mid-row
    run.metrics_path.write_text(text)
    run.events_path.write_text('{"kind": "start", "step": 0, "time": 0}\n')
    return folder


def open_and_wait(qtbot, window, run, timeout: int = 60_000) -> None:
    """Open ``run`` in ``window`` as File > Open does and wait until its history is shown (it is
    read in the background)."""
    assert window.open_run(run)
    qtbot.waitUntil(lambda: not window.opening.busy, timeout=timeout)
