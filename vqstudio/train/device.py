"""Where training runs: choosing the torch device and leaving a CPU core for the GUI."""

from __future__ import annotations

import os

import torch

from vqstudio.errors import DeviceError


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` is CUDA, else Apple MPS, else the CPU; an unusable named device is a DeviceError."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "CUDA was asked for but no CUDA GPU is usable here",
            "use --device cpu, or install a CUDA build of torch (see README)",
        )
    if name == "mps" and not _mps_available():
        raise DeviceError("Apple MPS was asked for but is not available", "use --device cpu")
    return torch.device(name)


def cap_cpu_threads(requested: int = 0) -> int:
    """Leave one core free for a GUI unless told otherwise; returns the thread count set."""
    threads = requested or max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(threads)
    return threads
