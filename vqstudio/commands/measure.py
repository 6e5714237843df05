"""``vqstudio reconstruct``, ``eval`` and ``compare``: a trained run's checkpoint applied to audio,
and the figures of its reconstructions (a table on the terminal, optionally JSON)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from vqstudio.errors import UserError


def _load_model(run_dir: str, checkpoint: str | None, device: str):
    from vqstudio.model import Codec
    from vqstudio.train.checkpoint import latest_checkpoint, load_checkpoint
    from vqstudio.train.device import pick_device
    from vqstudio.train.runfolder import RunFolder

    run = RunFolder(run_dir)
    config = run.load_config()
    path = Path(checkpoint) if checkpoint else latest_checkpoint(run.checkpoint_dir)
    if path is None:
        raise UserError(f"{run.path} has no checkpoint yet", "train it first: vqstudio train --run ...")
    state = load_checkpoint(path)
    dev = pick_device(device)
    model = Codec(config.model)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise UserError(f"{path} does not fit the model in {run.config_path}",
                        "use a checkpoint from this run folder") from None
    model.to(dev).eval()
    return config, model, dev, int(state["step"])


def cmd_reconstruct(args) -> int:
    from vqstudio.audio.io import read_audio, write_audio

    from vqstudio.model.inference import check_levels, reconstruct

    config, model, device, step = _load_model(args.run, args.checkpoint, args.device)
    check_levels(args.levels, config.model.rvq_levels, "--levels")
    out = Path(args.output)
    if out.suffix.lower() not in (".wav", ".flac"):
        raise UserError(f"{out}: unsupported output format '{out.suffix}'", "write a .wav or .flac file")
    sr = config.model.sample_rate
    wave = read_audio(args.input, sr)
    recon = reconstruct(model, wave, args.levels, device=device)
    write_audio(out, recon, sr)
    levels = args.levels or config.model.rvq_levels
    print(f"Wrote {out} ({len(recon) / sr:.2f} s at {sr} Hz, step {step}, {levels} levels)")
    return 0


def cmd_eval(args) -> int:
    from vqstudio.audio.corpus import scan_corpus
    from vqstudio.experiments.corpus_eval import evaluate_on_corpus
    from vqstudio.model.inference import check_levels

    config, model, device, step = _load_model(args.run, args.checkpoint, args.device)
    check_levels(args.levels, config.model.rvq_levels, "--levels")
    sr = config.model.sample_rate
    corpus = scan_corpus(args.data, sr)
    for name, reason in corpus.skipped:
        print(f"skipped {name}: {reason}", file=sys.stderr)
    summary = evaluate_on_corpus(model, config, corpus.files, levels=args.levels,
                                 max_seconds=args.max_seconds, device=device)
    summary["step"] = step
    print(format_eval_table(summary))
    if args.json:
        _write_json(args.json, summary)
    return 0


def cmd_compare(args) -> int:
    from vqstudio.experiments.compare import compare, format_table

    entries = compare(args.refs, args.data, levels=args.levels, max_seconds=args.max_seconds,
                      device=args.device, denoise=args.denoise, mos=args.mos, split=args.split,
                      match=args.match,
                      on_skip=lambda name, reason: print(f"skipped {name}: {reason}", file=sys.stderr))
    print(format_table(entries))
    if args.json:
        _write_json(args.json, entries)
    return 0


def _write_json(path: str, figures) -> None:
    from vqstudio.atomic import atomic_write_text

    # JSON has no inf or nan (a silent reconstruction's noise floor is -inf): write null.
    atomic_write_text(Path(path), json.dumps(_json_safe(figures), indent=2) + "\n")


def _json_safe(value):
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_eval_table(summary: dict) -> str:
    lines = [f"{'files':<22}{summary['files']}", f"{'step / levels':<22}{summary['step']} / {summary['levels']}"]
    for key, label, unit in (
        ("si_sdr_db", "SI-SDR", "dB"),
        ("mel_distance", "mel distance", ""),
        ("mrstft_distance", "MR-STFT distance", ""),
        ("noise_floor_dbfs", "noise floor", "dBFS"),
        ("pause_floor_dbfs", "floor in pauses", "dBFS"),
        ("pause_deep_dbfs", "deep in pauses", "dBFS"),
        ("comb_max_db", "frame-rate comb", "dB"),
        ("comb_audible_worst_db", "audible comb", "dB"),
        ("speech_comb_db", "comb under speech", "dB"),
        ("comb_loudest_dbfs", "comb level", "dBFS"),
        ("pesq", "PESQ", ""),
        ("stoi", "STOI", ""),
    ):
        if summary.get(key) is not None:
            lines.append(f"{label:<22}{summary[key]:8.3f} {unit}")
    for band, value in summary.get("band_error_db", {}).items():
        lines.append(f"{'band error ' + band:<22}{value:8.2f} dB")
    entropy = ", ".join(f"{e:.3f}" for e in summary["codebook_entropy"])
    lines.append(f"{'codebook entropy':<22}{entropy}")
    return "\n".join(lines)
