"""Compare runs and checkpoints by number: ``vqstudio compare RUN[:CKPT] RUN[:CKPT] ... [--data DIR]``.

Every checkpoint is measured on the same clips (the corpus is scanned once; each model reads them
at its own sample rate) by :func:`~vqstudio.experiments.corpus_eval.evaluate_on_corpus`, the
function ``vqstudio eval`` uses, so the two commands agree. :func:`format_table` prints one row
per checkpoint and one column per figure, the best in each column marked with ``*`` (which way is
better is :data:`FIGURES`'s). Every reference is resolved before any model is run: a bad one
costs nothing. Without ``--data`` the clips are the first run's corpus (its ``data.path``, or the
demo corpus when that is empty, as ``vqstudio train`` reads it).
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from vqstudio.audio.corpus import scan_corpus
from vqstudio.audio.distortion import INAUDIBLE_DBFS, require_dnsmos
from vqstudio.errors import UserError
from vqstudio.experiments.checkpoint_ref import resolve_ref
from vqstudio.experiments.corpus_eval import evaluate_on_corpus, load_model, pick_files
from vqstudio.experiments.denoise import check_strength
from vqstudio.experiments.denoise import denoise as denoise_audio
from vqstudio.experiments.denoise import label as denoise_label
from vqstudio.model.inference import check_levels

# (key in an entry, column heading, +1 if higher is better, -1 if lower is, 0 if nearest 0 is)
FIGURES: list[tuple[str, str, int]] = [
    ("si_sdr_db", "SI-SDR dB", +1),
    ("mel_distance", "mel", -1),
    ("mrstft_distance", "MR-STFT", -1),
    ("noise_floor_dbfs", "floor dBFS", -1),  # the reconstruction's level in the original's silences
    ("pause_floor_dbfs", "pauses dBFS", -1),  # the same without the frames at the pauses' edges
    ("pause_deep_dbfs", "deep pauses dBFS", -1),  # and only over 100 ms from sound: no word tails
    # the frame-rate comb: the worst clip's loudest audible harmonic over its neighbours (0: none)
    ("comb_audible_worst_db", "audible comb dB", -1),
    ("comb_loudest_dbfs", "comb dBFS", -1),  # the loudest harmonic's own level in quiet passages
    # under speech: the frame rate's harmonics over their neighbours, less the original's (0 best)
    ("speech_comb_db", "speech comb dB", 0),
    ("dnsmos_background", "DNSMOS BAK", +1),  # with --mos: DNSMOS P.835 background, speech only
    ("dnsmos_signal", "DNSMOS SIG", +1),  # ... the speech itself (distortion of the voice)
    ("dnsmos_overall", "DNSMOS OVRL", +1),
    ("pesq", "PESQ", +1),
    ("stoi", "STOI", +1),
    ("codebook_entropy_mean", "entropy", +1),  # mean over levels of entropy / log K
]
BAND_PREFIX = "band_error_db/"  # one column per band of band_error_db, lower is better


def compare(refs: Sequence[str], data: str | Path | None = None, *, levels: int | None = None,
            max_seconds: float | None = 30.0, device: str = "cpu",
            on_skip: Callable[[str, str], None] | None = None,
            denoise: float | None = None, mos: bool = False, split: str = "all",
            match: str | None = None) -> list[dict[str, Any]]:
    """One entry per reference: ``run``, ``checkpoint``, ``step`` and the eval figures; with
    ``denoise`` (a strength, 0..1) each is followed by the same checkpoint's reconstructions
    through :func:`vqstudio.experiments.denoise.denoise`, marked ``variant: "denoised S"``.
    ``mos`` adds DNSMOS background; ``split`` (``validation``: the split the first run's
    configuration makes of ``data``) and ``match`` (a glob on file names) pick the clips, by
    :func:`~vqstudio.experiments.corpus_eval.pick_files`."""
    if not refs:
        raise UserError("compare needs at least one run", "name runs as RUN or RUN:STEP|best|latest")
    if denoise is not None:
        denoise = check_strength(denoise, "--denoise")
    resolved = [resolve_ref(text) for text in refs]
    for ref in resolved:
        check_levels(levels, ref.config.model.rvq_levels, "--levels")
    if mos:
        require_dnsmos()
    if data is None:  # the first run's own corpus
        from vqstudio.config import DEMO_DIR

        data = resolved[0].config.data.path or DEMO_DIR
    corpus = scan_corpus(data, resolved[0].config.model.sample_rate)
    for name, reason in corpus.skipped:
        if on_skip is not None:
            on_skip(name, reason)
    files = pick_files(corpus, resolved[0].config, split, match)
    entries = []
    for ref in resolved:
        model, step = load_model(ref, device)
        summary = evaluate_on_corpus(model, ref.config, files, levels=levels,
                                     max_seconds=max_seconds, device=device, mos=mos)
        entries.append({"run": str(ref.run.path), "checkpoint": ref.path.name, "step": step, **summary})
        if denoise is not None:
            post = partial(denoise_audio, strength=denoise)
            summary = evaluate_on_corpus(model, ref.config, files, levels=levels,
                                         max_seconds=max_seconds, device=device, post=post, mos=mos)
            entries.append({"run": str(ref.run.path), "checkpoint": ref.path.name, "step": step,
                            "variant": denoise_label(denoise), **summary})
    return entries


def _columns(entries: Sequence[dict[str, Any]]) -> list[tuple[str, str, int]]:
    columns = [c for c in FIGURES if any(_value(e, c[0]) is not None for e in entries)]
    bands = list(dict.fromkeys(b for e in entries for b in e.get("band_error_db", {})))
    return columns + [(BAND_PREFIX + b, f"band {b} dB", -1) for b in bands]


def _value(entry: dict[str, Any], key: str) -> float | None:
    if key == "codebook_entropy_mean":
        levels = entry.get("codebook_entropy") or []
        value = sum(levels) / len(levels) if levels else None
    elif key.startswith(BAND_PREFIX):
        value = entry.get("band_error_db", {}).get(key[len(BAND_PREFIX):])
    else:
        value = entry.get(key)
    if value is None or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def best_rows(entries: Sequence[dict[str, Any]], key: str, better: int) -> set[int]:
    """Indices of the entries with the best value of ``key`` (ties all marked; none when every
    value is the same)."""
    values = {i: v for i, e in enumerate(entries) if (v := _value(e, key)) is not None}
    if len(set(values.values())) < 2:  # one value, or all equal: nothing stands out
        return set()
    def score(v: float) -> float:
        return -abs(v) if better == 0 else v * better

    best = max(score(v) for v in values.values())
    return {i for i, v in values.items() if score(v) == best}


def label(entry: dict[str, Any]) -> str:
    text = f"{Path(entry['run']).name}:{entry['step']}"
    return f"{text} {entry['variant']}" if entry.get("variant") else text


def format_table(entries: Sequence[dict[str, Any]]) -> str:
    """One row per entry, one column per figure; ``*`` marks the best in each column."""
    columns = _columns(entries)
    names = [label(e) + (" (best.pt)" if e.get("checkpoint") == "best.pt" else "") for e in entries]
    first = max(len("run:step"), *(len(n) for n in names)) + 2
    widths = [max(len(heading), 8) + 2 for _, heading, _ in columns]
    lines = ["run:step".ljust(first) + "".join(h.rjust(w) for (_, h, _), w in zip(columns, widths))]
    marks = {key: best_rows(entries, key, better) for key, _, better in columns}
    for i, (entry, name) in enumerate(zip(entries, names)):
        cells = []
        for (key, _, _), width in zip(columns, widths):
            value = _value(entry, key)
            text = "-" if value is None else f"{value:.3f}" + ("*" if i in marks[key] else " ")
            cells.append(text.rjust(width))
        lines.append(name.ljust(first) + "".join(cells))
    lines.append(f"{entries[0]['files']} clip(s) each; * the best in its column (higher is better for "
                 "SI-SDR, DNSMOS, PESQ, STOI and entropy, nearest 0 for the speech comb, lower for the others)")
    if any(c[0] == "comb_audible_worst_db" for c in columns):
        lines.append("audible comb: the worst clip's loudest harmonic of the frame rate over its "
                     f"neighbours in the pauses, 0 when none is louder than {INAUDIBLE_DBFS:g} dBFS; "
                     "speech comb: the same harmonics where the original sounds, over the original's "
                     "(+: lines the model adds, -: notches)")
    return "\n".join(lines)
