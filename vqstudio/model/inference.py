"""Reconstructing a clip outside training: the one place the trainer, the GUI worker, the CLI and
the diagnosis call to run audio through a codec.

``reconstruct`` leaves the model as it found it (train/eval mode) and never touches autograd
state, EMA buffers or random numbers, so it can be called between training steps.
"""

from __future__ import annotations

import numpy as np
import torch

from vqstudio.errors import UserError


def check_levels(levels: int | None, num_levels: int, what: str = "levels") -> int | None:
    """``levels`` as an int in ``1..num_levels`` (None means all), or a UserError naming the fix."""
    if levels is None:
        return None
    try:
        value = int(levels)
    except (TypeError, ValueError):
        raise UserError(f"{what} {levels!r} is not a whole number",
                        f"choose 1..{num_levels} for this model") from None
    if not 1 <= value <= num_levels:
        raise UserError(f"cannot decode with {what} {value}: this model has {num_levels} levels",
                        f"choose 1..{num_levels}")
    return value


def reconstruct(
    model: torch.nn.Module,
    wave: np.ndarray,
    levels: int | None = None,
    *,
    device: torch.device | str | None = None,
    amp: bool = False,
    with_codes: bool = False,
):
    """Mono clip ``[T]`` -> reconstruction ``[T]`` float32 numpy through the first ``levels``
    levels (all if None). With ``with_codes`` returns ``(audio, codes [L, N] int64 numpy)``."""
    levels = check_levels(levels, model.num_levels)
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                out = model(x.view(1, 1, -1), levels=levels)
            audio = out.audio.float().view(-1).cpu().numpy()
            if with_codes:
                return audio, out.codes[0].cpu().numpy()
            return audio
    finally:
        model.train(was_training)
