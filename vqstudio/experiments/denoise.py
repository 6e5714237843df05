"""A post-processed source: a reconstruction through a spectral-gating denoiser, so the user can
hear (and measure in ``vqstudio compare --denoise``) whether post-processing is enough and what
it takes away.

The denoiser is the maintained ``noisereduce`` package (Sainburg's spectral gating; numpy/scipy,
no model to download). Non-stationary mode: the noise threshold follows a smoothed running
estimate of each frequency's level, which suits a codec's floor (it rises and falls with the
signal) better than one fixed noise profile. ``strength`` (0..1) is its ``prop_decrease``: how
far a gated bin is pulled down (1: all the way, 0.5: by half, about -6 dB).
"""

from __future__ import annotations

import numpy as np

from vqstudio.errors import UserError

DEFAULT_STRENGTH = 0.8


def check_strength(strength: float, name: str = "strength") -> float:
    """``strength`` as a float in [0, 1], or a UserError naming ``name``."""
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise UserError(f"{name} must be a number from 0 to 1, not {strength!r}",
                        f"give {name} as e.g. 0.8") from None
    if not 0.0 <= value <= 1.0 or value != value:
        raise UserError(f"{name} must be from 0 to 1, not {strength}",
                        "0 leaves the audio as it is, 1 gates noise fully")
    return value


def denoise(audio: np.ndarray, sample_rate: int, strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """``audio`` [T] float32 through spectral gating at ``strength``; same length and rate.
    Strength 0 (or a clip too short to gate) returns a copy unchanged."""
    strength = check_strength(strength)
    x = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
    n_fft = 1024 if sample_rate >= 16000 else 512
    if strength == 0.0 or x.size < 2 * n_fft or not np.any(x):
        return x.copy()
    import noisereduce  # imported here: it pulls in matplotlib, which nothing else needs

    out = noisereduce.reduce_noise(
        y=x, sr=int(sample_rate), stationary=False, prop_decrease=strength, n_fft=n_fft,
        use_tqdm=False, n_jobs=1,
    )
    out = np.asarray(out, dtype=np.float32).reshape(-1)
    if out.shape[0] != x.shape[0]:  # it pads and trims internally; make sure of the length
        out = np.pad(out, (0, max(0, x.shape[0] - out.shape[0])))[: x.shape[0]]
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def label(strength: float) -> str:
    """How a denoised variant is named in tables and listening records: "denoised 0.8"."""
    return f"denoised {float(strength):g}"
