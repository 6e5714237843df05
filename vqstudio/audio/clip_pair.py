"""An original clip and its reconstruction as two mono float64 arrays of one length: the input
every metric and distortion measure starts from."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vqstudio.errors import UserError

# A codec decodes whole frames, so a reconstruction can be a little longer (or shorter) than the
# clip it came from; up to one hop of the largest preset (music-44k, hop 512) is trimmed from the
# end of the longer one rather than refused. Anything more is a different clip.
MAX_TRIM_SAMPLES = 512


def as_mono(wave: Any, name: str = "audio") -> np.ndarray:
    """A waveform ``[T]``, ``[1, T]`` or ``[1, 1, T]`` (numpy or torch) as float64 numpy ``[T]``."""
    if isinstance(wave, torch.Tensor):
        wave = wave.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(wave, dtype=np.float64)
    if arr.ndim > 1 and all(s == 1 for s in arr.shape[:-1]):
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise UserError(
            f"{name} has shape {tuple(arr.shape)}, not a mono waveform",
            "mix it down to one channel (shape [T]) before comparing",
        )
    if not np.all(np.isfinite(arr)):
        raise UserError(f"{name} contains NaN or infinite samples", "check the model output")
    return arr


def match_lengths(
    reference: Any, estimate: Any, max_trim: int = MAX_TRIM_SAMPLES
) -> tuple[np.ndarray, np.ndarray]:
    """Both clips as float64 ``[T]`` of one length.

    A difference of at most ``max_trim`` samples (one codec hop) is trimmed from the end of the
    longer clip; a larger one raises :class:`UserError` naming both lengths.
    """
    ref = as_mono(reference, "reference")
    est = as_mono(estimate, "estimate")
    if len(ref) != len(est):
        if abs(len(ref) - len(est)) > max_trim:
            raise UserError(
                f"reference has {len(ref)} samples but estimate has {len(est)} "
                f"(they differ by more than one hop, {max_trim} samples)",
                "compare a reconstruction with the clip it was made from, at the same sample rate",
            )
        n = min(len(ref), len(est))
        ref, est = ref[:n], est[:n]
    if len(ref) == 0:
        raise UserError("reference and estimate are empty", "compare clips with some audio in them")
    return ref, est
