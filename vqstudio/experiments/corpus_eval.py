"""A trained model measured on a corpus: the figures of ``vqstudio eval`` and ``vqstudio compare``.

One function, :func:`evaluate_on_corpus`, so that the two commands (and later the app's comparison
table) give the same numbers for the same checkpoint: each clip is read from its start (at most
``max_seconds``), reconstructed through :func:`vqstudio.model.inference.reconstruct`, measured by
:func:`vqstudio.audio.metrics.evaluate_pair`, and the means are taken by
:func:`~vqstudio.audio.metrics.aggregate`; the codebook entropy is over the codes of all clips.
:func:`load_model` builds the model of a :class:`~vqstudio.experiments.checkpoint_ref.CheckpointRef`.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from vqstudio.audio import metrics
from vqstudio.audio.io import read_audio
from vqstudio.config import Config
from vqstudio.errors import CheckpointError
from vqstudio.experiments.checkpoint_ref import CheckpointRef
from vqstudio.model import Codec
from vqstudio.model.inference import reconstruct


def evaluate_on_corpus(model: torch.nn.Module, config: Config, files: Sequence[Any], *,
                       levels: int | None = None, max_seconds: float | None = 30.0,
                       device: str | torch.device | None = None,
                       post: Callable[[np.ndarray, int], np.ndarray] | None = None) -> dict[str, Any]:
    """The mean figures of ``model`` over ``files`` (a corpus's ``FileInfo`` list, each with a
    ``path``), plus ``codebook_entropy`` (per level), ``files`` (how many) and ``levels``.
    ``post(reconstruction, sample_rate)`` is applied to each reconstruction before it is measured
    (e.g. a denoiser)."""
    sr = config.model.sample_rate
    rows, all_codes = [], []
    for info in files:
        wave = read_audio(info.path, sr, duration=max_seconds)
        recon, codes = reconstruct(model, wave, levels, device=device, with_codes=True)
        if post is not None:
            recon = post(recon, sr)
        rows.append(metrics.evaluate_pair(wave, recon, sr))
        all_codes.append(codes)
    summary = metrics.aggregate(rows)
    codes = np.concatenate(all_codes, axis=-1)
    summary["codebook_entropy"] = metrics.codebook_entropy(codes, config.model.codebook_size)
    summary["files"] = len(rows)
    summary["levels"] = levels or config.model.rvq_levels
    return summary


def load_model(ref: CheckpointRef, device: torch.device | str = "cpu") -> tuple[Codec, int]:
    """The model of ``ref``'s checkpoint, in eval mode on ``device``, and the checkpoint's step."""
    state = ref.load()
    model = Codec(ref.config.model)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise CheckpointError(f"{ref.path} does not fit the model in {ref.run.config_path}",
                              "use a checkpoint from this run folder") from None
    return model.to(device).eval(), int(state["step"])
