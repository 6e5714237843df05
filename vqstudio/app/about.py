"""Help menu texts: the About box (the versions of VQ Studio, Python, torch and Qt, and the device
training runs on) and the keyboard shortcuts."""

from __future__ import annotations

import html

import PySide6
import torch
from PySide6.QtCore import qVersion

from vqstudio.version import version_info

SHORTCUTS = (
    ("Space", "start, pause or resume training"),
    ("Ctrl+N", "new run"),
    ("Ctrl+O", "open a run folder"),
    ("Ctrl+S", "save a checkpoint now"),
    ("Ctrl+Shift+F", "fork the run from a checkpoint, with settings changed"),
    ("Ctrl+Q", "quit (training stops at the end of its step and saves a checkpoint)"),
    ("Space or P", "Audition panel focused: play / pause"),
    ("A / B / R", "Audition panel focused: original / reconstruction / residual"),
    ("Tab", "Audition panel focused: back to the source heard before"),
)


def training_device(running_on: str | None = None) -> str:
    """The device a run trains on: ``running_on`` (what the trainer reported) if known, else
    what a new run would pick (CUDA, then Apple MPS, then the CPU)."""
    if running_on:
        return running_on
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def versions(running_on: str | None = None) -> dict[str, str]:
    """Name -> version of everything the About box lists, the device last."""
    info = version_info()
    vq = info["version"]
    if info.get("commit"):
        vq += f" (commit {info['commit'][:12]}{', modified' if info.get('dirty') else ''})"
    return {
        "VQ Studio": vq,
        "Python": info["python"],
        "torch": str(torch.__version__),
        "Qt": f"{qVersion()} (PySide6 {PySide6.__version__})",
        "device": training_device(running_on),
    }


def about_html(running_on: str | None = None) -> str:
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>&nbsp;{html.escape(v)}</td></tr>"
                   for k, v in versions(running_on).items())
    return ("<h3>VQ Studio</h3><p>A workbench for residual-VQ audio codecs: watch every loss term, "
            "codebook usage and spectra while the model trains, change loss weights live and "
            f"A/B-listen to the result.</p><table>{rows}</table>")


def shortcuts_html() -> str:
    rows = "".join(f"<tr><td><b>{html.escape(k)}</b></td><td>&nbsp;{html.escape(v)}</td></tr>"
                   for k, v in SHORTCUTS)
    return f"<table>{rows}</table><p>Drop an audio file on the window to audition it.</p>"
