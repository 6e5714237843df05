""":func:`tanh_saturation`: what the mel normalisation lets the mel losses see.

With ``tanh`` mels (tanh of the linear mel magnitude) loud bins saturate (no gradient) and quiet
bins sit near 0, where any error is tiny in absolute terms: the pauses' hiss costs next to
nothing. The figure that says it plainly is the share of the mel L1 that comes from the original's
pauses, beside the same share with log mels. With ``log`` mels the check looks at the 1e-5 floor:
bins of the original below it are not compared at all.
"""

from __future__ import annotations

import numpy as np
import torch

from vqstudio.audio.distortion import FRAME_MS, SILENCE_DBFS
from vqstudio.audio.spectral import LOG_FLOOR, TANH_SATURATION, normalize_mel
from vqstudio.diagnose.findings import Finding
from vqstudio.diagnose.subject import Subject, remedy
from vqstudio.train.losses import LossSuite

QUIET_TANH = 0.01  # a bin whose tanh is below this weighs under 1 % of a saturated one
QUIET_SHARE_WARN = 0.3
SATURATED_SHARE_WARN = 0.05
FLOORED_SHARE_INFO = 0.2  # log mels: share of the original's bins under the floor


def _mels(subject: Subject):
    """Per loss scale: (original mel ``[M, F]``, reconstruction mel, silent-frame mask ``[F]``)."""
    suite = LossSuite(subject.config)
    out = []
    for loss in suite.mel_losses:
        mel, hop = loss.mel, loss.mel.stft_params.hop
        for c in subject.clips:
            with torch.no_grad():
                pair = torch.from_numpy(np.stack([c.original, c.reconstruction]).astype(np.float32))
                m = mel(pair)
            frames = m.shape[-1]
            centres = np.minimum(np.arange(frames) * hop, len(c.original) - 1)
            frame = int(subject.sample_rate * FRAME_MS / 1000)
            power = np.array([np.mean(c.original[max(0, i - frame // 2): i + frame // 2] ** 2) for i in centres])
            silent = 10 * np.log10(power + 1e-24) < SILENCE_DBFS
            out.append((m[0], m[1], torch.from_numpy(silent)))
    return out


def _pause_share(mels, mode: str) -> float:
    """Share of the mel L1 (normalised by ``mode``) that the original's pauses contribute."""
    pause = whole = 0.0
    for ref, est, silent in mels:
        err = (normalize_mel(est[None], mode) - normalize_mel(ref[None], mode)).abs()[0]
        pause += float(err[:, silent].sum())
        whole += float(err.sum())
    return pause / whole if whole > 0 else float("nan")


def tanh_saturation(subject: Subject) -> list[Finding]:
    mels = _mels(subject)
    originals = torch.cat([ref.flatten() for ref, _, _ in mels])
    pause_frames = float(np.mean(np.concatenate([s.numpy() for _, _, s in mels])))
    if subject.config.loss.mel_norm != "tanh":
        floored = float((originals < LOG_FLOOR).float().mean())
        if subject.config.loss.mel_norm != "log" or floored < FLOORED_SHARE_INFO:
            return []
        return [Finding(
            id="log_mel_floor", severity="info",
            title=f"{100 * floored:.0f} % of the original's mel bins lie under the log floor",
            explanation=f"The log mels are floored at {LOG_FLOOR:g}: below it the loss cannot tell "
                        "the reconstruction's hiss from the original's silence.",
            evidence={"floored_share": floored, "log_floor": LOG_FLOOR, "threshold": FLOORED_SHARE_INFO})]
    tanh = torch.tanh(originals)
    saturated = float((tanh.abs() > TANH_SATURATION).float().mean())
    quiet = float((tanh.abs() < QUIET_TANH).float().mean())
    if quiet < QUIET_SHARE_WARN and saturated < SATURATED_SHARE_WARN:
        return []
    tanh_pause, log_pause = _pause_share(mels, "tanh"), _pause_share(mels, "log")
    return [Finding(
        id="tanh_saturation", severity="warn",
        title=f"tanh mels hide the pauses: they are {100 * pause_frames:.0f} % of the frames but give "
              f"{100 * tanh_pause:.1f} % of the mel loss (log mels: {100 * log_pause:.0f} %)",
        explanation=f"{100 * quiet:.0f} % of the original's mel bins are so quiet that tanh keeps them "
                    f"near 0, where an error costs almost nothing, and {100 * saturated:.1f} % are "
                    "saturated (no gradient): hiss in silences goes unpunished.",
        evidence={"quiet_share": quiet, "saturated_share": saturated, "pause_frame_share": pause_frames,
                  "pause_loss_share_tanh": tanh_pause, "pause_loss_share_log": log_pause,
                  "quiet_tanh": QUIET_TANH, "saturation": TANH_SATURATION,
                  "warn_quiet_share": QUIET_SHARE_WARN, "warn_saturated_share": SATURATED_SHARE_WARN},
        remedies=(remedy("loss.mel_norm", "log", "log mels weigh quiet bins like loud ones"),),
    )]
