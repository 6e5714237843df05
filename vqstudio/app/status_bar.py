"""The status bar's permanent read-outs: training state, device, step, time spent training, and
speed in steps and in audio seconds per second."""

from __future__ import annotations

import math

from PySide6.QtWidgets import QLabel, QStatusBar

READOUTS = (
    ("state", "training state"),
    ("device", "where the model trains"),
    ("step", "global step"),
    ("elapsed", "time spent training this run"),
    ("speed", "optimisation steps per second"),
    ("audio", "seconds of audio trained on per second"),
)


def format_elapsed(seconds: float) -> str:
    """``h:mm:ss``, or "–" when unknown."""
    if not math.isfinite(seconds):
        return "–"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def add_readouts(status: QStatusBar) -> dict[str, QLabel]:
    """Add one label per read-out to ``status``; returns them by key."""
    labels: dict[str, QLabel] = {}
    for key, tip in READOUTS:
        label = QLabel()
        label.setToolTip(tip)
        status.addPermanentWidget(label)
        labels[key] = label
    return labels


def show_run(labels: dict[str, QLabel], store) -> None:
    """Device, step, elapsed time and speeds from the run store."""
    labels["device"].setText(store.info.get("device") or "–")
    labels["step"].setText(f"step {store.current_step}")
    labels["elapsed"].setText(format_elapsed(store.current_elapsed))
    sps, aps = store.steps_per_second, store.audio_seconds_per_second
    labels["speed"].setText(f"{sps:.2f} steps/s" if math.isfinite(sps) else "– steps/s")
    labels["audio"].setText(f"{aps:.1f} audio-s/s" if math.isfinite(aps) else "– audio-s/s")
