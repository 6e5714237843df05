""":func:`diagnose`: every check on one model and a few clips, as one ranked
:class:`~vqstudio.diagnose.findings.Diagnosis`.

The model comes as a :class:`~vqstudio.model.Codec` with its :class:`~vqstudio.config.Config`, or
as a run folder (``RUN``, ``RUN:STEP``, ``RUN:best``), loaded through the same
:mod:`vqstudio.experiments.checkpoint_ref` as ``vqstudio train --from`` and ``compare``. Clips are
arrays, audio files, or (by default, for a run) the validation files of the run's own corpus. Each
clip is reconstructed once; every check reads the shared :class:`Subject`. A check that cannot
measure (no pauses, no long clip, no speechmos) is listed under ``skipped`` with why.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from vqstudio.audio.io import read_audio
from vqstudio.config import Config
from vqstudio.diagnose import (alignment, background, codebooks, gradients, istft, levels, long_context, mels, mos,
                               speech_buzz)
from vqstudio.diagnose.findings import Diagnosis, Finding
from vqstudio.diagnose.subject import NotMeasured, Subject, reconstruct_clips
from vqstudio.errors import UserError

# In this order: background_mos reads what the measured background checks found.
CHECKS: dict[str, Callable[[Subject], list[Finding]]] = {
    "noise_floor": background.noise_floor,
    "frame_rate_buzz": background.frame_rate_buzz,
    "speech_comb": speech_buzz.speech_comb,
    "tanh_saturation": mels.tanh_saturation,
    "loss_dominance": gradients.loss_dominance,
    "waveform_misalignment": alignment.waveform_misalignment,
    "codebook_collapse": codebooks.codebook_collapse,
    "unused_levels": codebooks.unused_levels,
    "istft": istft.istft,
    "dc_offset": levels.dc_offset,
    "clipping": levels.clipping,
    "level_mismatch": levels.level_mismatch,
    "long_context": long_context.long_context,
    "background_mos": mos.background_mos,
}
# Checks that run only when asked for (see mos.py for why), and what the skip says otherwise.
ON_REQUEST = {"background_mos": "not asked for (DNSMOS costs seconds per clip; --mos or the panel's "
                                "DNSMOS box runs it)"}
MAX_SECONDS = 10.0  # of each clip, from its start
MAX_CLIPS = 3


def diagnose(
    model_or_run: torch.nn.Module | str | Path,
    clips: Sequence[Any] | None = None,
    *,
    config: Config | None = None,
    step: int | None = None,
    data: str | None = None,
    checks: Sequence[str] | None = None,
    max_seconds: float | None = MAX_SECONDS,
    max_clips: int = MAX_CLIPS,
    mos: bool = False,
) -> Diagnosis:
    """Run ``checks`` on a model and clips: if None, all of :data:`CHECKS` but those in
    :data:`ON_REQUEST`, which ``mos=True`` adds.

    ``clips``: arrays ``[T]`` at the model's rate, paths of audio files, or ``(name, array)``
    pairs; None means the validation split of ``data`` (a folder), else of the run's own corpus.
    """
    run_name, metrics = "", {}
    if isinstance(model_or_run, (str, Path)):
        model, config, step, run_name = _load_run(str(model_or_run))
    else:
        model = model_or_run
        if config is None:
            raise UserError("diagnose() was given a model without its configuration",
                            "pass config= (the run's Config)")
    names = [n for n in CHECKS if n not in ON_REQUEST or mos] if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise UserError(f"unknown check {', '.join(unknown)}", f"choose from {', '.join(CHECKS)}")
    waves = _clips(clips, config, data, max_seconds, max_clips)
    subject = Subject(config, reconstruct_clips(model, waves), model, step, metrics, run_name)
    skipped = {n: why for n, why in ON_REQUEST.items() if n not in names}
    seconds: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        try:
            subject.found.extend(CHECKS[name](subject))
        except NotMeasured as exc:
            skipped[name] = str(exc)
        seconds[name] = time.perf_counter() - start
    return Diagnosis(step, list(subject.found), skipped, [c.name for c in subject.clips], seconds, run_name,
                     subject.sample_rate, {c.name: (c.original, c.reconstruction) for c in subject.clips},
                     {c.name: c.source for c in subject.clips if c.source})


def _load_run(text: str):
    from vqstudio.experiments.checkpoint_ref import resolve_ref
    from vqstudio.experiments.corpus_eval import load_model

    ref = resolve_ref(text)
    model, step = load_model(ref)
    return model, ref.config, step, str(ref.run.path)


def _clips(clips, config: Config, data: str | None, max_seconds: float | None, max_clips: int):
    """``(name, wave [T] float32, source)`` for each clip."""
    sr = config.model.sample_rate
    if clips is None:
        clips = clip_files(config, data)[:max_clips]
    out = []
    for i, clip in enumerate(clips):
        if isinstance(clip, tuple):
            name, wave = clip
            out.append((str(name), np.asarray(wave, np.float32), ""))
        elif isinstance(clip, (str, Path)):
            wave = read_audio(clip, sr, duration=max_seconds)
            out.append((Path(clip).name, wave, str(clip)))
        else:
            out.append((f"clip {i + 1}", np.asarray(clip, np.float32), ""))
    if not out:
        raise UserError("there are no clips to diagnose", "give audio files or a data folder with some")
    for name, wave, _ in out:
        if wave.ndim != 1 or len(wave) < sr // 2:
            raise UserError(f"clip {name} is not a mono clip of at least 0.5 s",
                            "give mono audio of half a second or more")
    return out


def clip_files(config: Config, data: str | None, split: str = "validation",
                     match: str | None = None) -> list[str]:
    """The files of ``data`` (or of the run's corpus; the demo corpus if it has none) to diagnose:
    its validation split by default, ``split`` ``all`` or ``training`` otherwise, and of those the
    ones whose name matches the glob ``match`` (``vqstudio compare``'s
    :func:`~vqstudio.experiments.corpus_eval.pick_files`). A corpus of one file is that file."""
    from vqstudio.audio.corpus import scan_corpus
    from vqstudio.experiments.corpus_eval import pick_files
    from vqstudio.resources import demo_dir

    folder = data or config.data.path or demo_dir()
    corpus = scan_corpus(folder, config.model.sample_rate)
    if not corpus.files:
        raise UserError(f"{folder} holds no usable audio", "point --data at a folder of audio files")
    if len(corpus.files) == 1:
        split = "all"
    return [f.path for f in pick_files(corpus, config, split, match)]
