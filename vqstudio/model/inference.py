"""Reconstructing a clip outside training: the one place the trainer, the GUI worker, the CLI and
the diagnosis call to run audio through a codec.

``reconstruct`` leaves the model as it found it (train/eval mode) and never touches autograd
state, EMA buffers or random numbers, so it can be called between training steps.

Long clips are encoded in chunks of ``CHUNK_SECONDS`` so memory stays bounded (the full-rate
activations of a ten-minute clip would be gigabytes). Each chunk carries the encoder's receptive
field (:attr:`~vqstudio.model.encoder.Encoder.context`) of real signal either side and keeps only
its own frames, so the latent is the whole-clip latent: the same arithmetic, equal up to the last
bit of float rounding where oneDNN picks another kernel for another length, and the same codes
(tested). The decoder is never chunked: its self-attention is global over the clip, so no overlap
would make a chunked decoding equal to the whole one; it runs at the frame rate, where a long clip
costs little memory (attention on the CPU is computed blockwise).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

from vqstudio.errors import UserError

CHUNK_SECONDS = 30.0  # clips up to this long are encoded whole


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
    levels (all if None). With ``with_codes`` returns ``(audio, codes [L, N] int64 numpy)``.
    The same as :func:`decode_latent` of :func:`encode_clip`, to the bit."""
    levels = check_levels(levels, model.num_levels)
    latent = encode_clip(model, wave, device=device, amp=amp)
    return decode_latent(model, latent, levels, len(wave), amp=amp, with_codes=with_codes)


def encode_clip(model: torch.nn.Module, wave: np.ndarray, *,
                device: torch.device | str | None = None, amp: bool = False) -> torch.Tensor:
    """Mono clip ``[T]`` -> the encoder's latent ``[1, D, N]`` (an inference tensor on the model's
    device), in chunks for clips over ``CHUNK_SECONDS``. Keep it to decode the clip again with
    other levels through the same weights (:func:`decode_latent`) without encoding it twice."""
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    with _evaluating(model), torch.inference_mode():
        x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).to(device).view(1, 1, -1)
        chunk = int(CHUNK_SECONDS * model.sample_rate) // model.hop
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            if -(-x.shape[-1] // model.hop) <= chunk:
                return model.encoder(x)
            return encode_in_chunks(model.encoder, x, chunk)


def decode_latent(model: torch.nn.Module, latent: torch.Tensor, levels: int | None, length: int, *,
                  amp: bool = False, with_codes: bool = False):
    """:func:`encode_clip`'s latent -> the reconstruction ``[length]`` float32 numpy through the
    first ``levels`` levels (all if None); with ``with_codes`` also the codes ``[L, N]``."""
    levels = check_levels(levels, model.num_levels)
    with _evaluating(model), torch.inference_mode():
        with torch.autocast(latent.device.type, dtype=torch.bfloat16, enabled=amp):
            q = model.quantizer(latent, levels)
            audio = model.decoder(q.quantized)[..., :length]
        audio = audio.float().view(-1).cpu().numpy()
        if with_codes:
            return audio, q.codes[0].cpu().numpy()
        return audio


@contextlib.contextmanager
def _evaluating(model: torch.nn.Module):
    """``model`` in eval mode for the block, then back in the mode it was in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def encode_in_chunks(encoder, wave: torch.Tensor, chunk_frames: int) -> torch.Tensor:
    """``encoder(wave)`` ``[B, D, N]`` computed ``chunk_frames`` frames at a time, each chunk with
    ``encoder.context`` samples of the clip either side (fewer at the clip's ends, exactly as the
    whole clip sees them)."""
    hop, length = encoder.hop, wave.shape[-1]
    frames = -(-length // hop)
    wave = F.pad(wave, (0, frames * hop - length))  # what the encoder pads the whole clip with
    context = encoder.context // hop
    pieces = []
    for start in range(0, frames, chunk_frames):
        stop = min(frames, start + chunk_frames)
        lo, hi = max(0, start - context), min(frames, stop + context)
        latent = encoder(wave[..., lo * hop : hi * hop])
        pieces.append(latent[..., start - lo : stop - lo])
    return torch.cat(pieces, dim=-1)
