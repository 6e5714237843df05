"""A trained model measured on a corpus: the figures of ``vqstudio eval`` and ``vqstudio compare``.

One function, :func:`evaluate_on_corpus`, so that the two commands (and later the app's comparison
table) give the same numbers for the same checkpoint: each clip is read from its start (at most
``max_seconds``), reconstructed through :func:`vqstudio.model.inference.reconstruct`, measured by
:func:`vqstudio.audio.metrics.evaluate_pair` and :func:`vqstudio.audio.distortion.distortion_figures`
(the floor in the pauses, the frame-rate comb; with ``mos`` the DNSMOS background, signal and
overall scores) and :func:`vqstudio.audio.speech_comb.speech_comb` (the comb under speech), and the
means are taken by :func:`~vqstudio.audio.metrics.aggregate`; codebook entropy and usage are over
the codes of all clips. The comb is also summed up as the worst clip's audible comb
(``comb_audible_worst_db``, :func:`~vqstudio.audio.distortion.worst_audible_comb`): a mean of the
raw figure would let a buzz on one clip vanish among clean ones, and count as a comb what stands
over its neighbours at -100 dBFS. :func:`pick_files` limits a corpus to the run's validation split or to file
names matching a pattern. :func:`load_model` builds the model of a
:class:`~vqstudio.experiments.checkpoint_ref.CheckpointRef`.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from vqstudio.audio import distortion, metrics
from vqstudio.audio.io import read_audio
from vqstudio.audio.speech_comb import speech_comb
from vqstudio.config import Config
from vqstudio.errors import CheckpointError, UserError
from vqstudio.experiments.checkpoint_ref import CheckpointRef
from vqstudio.model import Codec
from vqstudio.model.inference import reconstruct


def evaluate_on_corpus(model: torch.nn.Module, config: Config, files: Sequence[Any], *,
                       levels: int | None = None, max_seconds: float | None = 30.0,
                       device: str | torch.device | None = None,
                       post: Callable[[np.ndarray, int], np.ndarray] | None = None,
                       mos: bool = False) -> dict[str, Any]:
    """The mean figures of ``model`` over ``files`` (a corpus's ``FileInfo`` list, each with a
    ``path``), plus ``codebook_entropy`` and ``codebook_usage`` (per level: entropy / log K, and
    the share of the K codes used), ``files`` (how many) and ``levels``. With ``mos`` each clip's
    DNSMOS background score is ``dnsmos_background`` (a speech model; raises the install hint when
    speechmos is missing). ``post(reconstruction, sample_rate)`` is applied to each reconstruction
    before it is measured (e.g. a denoiser)."""
    if mos:
        distortion.require_dnsmos()  # the install hint before any clip is reconstructed
    sr = config.model.sample_rate
    rows, all_codes = [], []
    for info in files:
        wave = read_audio(info.path, sr, duration=max_seconds)
        recon, codes = reconstruct(model, wave, levels, device=device, with_codes=True)
        if post is not None:
            recon = post(recon, sr)
        row = metrics.evaluate_pair(wave, recon, sr)
        row.update(distortion.distortion_figures(wave, recon, sr, config.model.hop))
        row["speech_comb_db"] = speech_comb(wave, recon, sr, config.model.hop, config.model.n_fft).excess_db
        if mos:
            scores = distortion.dnsmos(recon, sr)
            row["dnsmos_background"] = scores.background
            row["dnsmos_signal"] = scores.signal
            row["dnsmos_overall"] = scores.overall
        rows.append(row)
        all_codes.append(codes)
    summary = metrics.aggregate(rows)
    summary["comb_audible_worst_db"] = distortion.worst_audible_comb(rows)
    codes = np.concatenate(all_codes, axis=-1)
    size = config.model.codebook_size
    summary["codebook_entropy"] = metrics.codebook_entropy(codes, size)
    summary["codebook_usage"] = [len(np.unique(level)) / size for level in codes]
    summary["files"] = len(rows)
    summary["levels"] = levels or config.model.rvq_levels
    return summary


SPLITS = ("all", "validation", "training")


def pick_files(corpus: Any, config: Config, split: str = "all", match: str | None = None) -> list[Any]:
    """The files of ``corpus`` to measure: all of them, or the ``validation`` (``training``) split
    the trainer makes of it with ``config``'s ``data.val_fraction`` and ``data.seed``, and of
    those the ones whose file name matches the glob ``match`` (e.g. ``speech*``)."""
    if split not in SPLITS:
        raise UserError(f"--split {split} is not one of {', '.join(SPLITS)}", "use --split validation")
    files = list(corpus.files)
    if split != "all" and files:
        training, validation = corpus.split(config.data.val_fraction, config.data.seed)
        files = list((validation if split == "validation" else training).files)
    if match:
        files = [f for f in files if fnmatch(Path(f.path).name, match)]
    if not files:
        where = f"the {split} split of {corpus.folder}" if split != "all" else str(corpus.folder)
        raise UserError(f"{where} has no audio file" + (f" named like '{match}'" if match else ""),
                        "check --data, --split and --match (a glob on file names, e.g. 'speech*')")
    return files


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
