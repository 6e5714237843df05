"""The command line: ``vqstudio presets | train | reconstruct | eval | app``.

Every mistake a user can make ends as one line on stderr naming the problem and the fix, and exit
status 2; nothing prints a traceback unless it is a bug.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from vqstudio.errors import UserError

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.handler(args) or 0
    except UserError as exc:
        print(f"vqstudio: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("vqstudio: interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vqstudio", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_VersionAction,
                        help="print the version, git commit, Python and torch versions, and exit")
    sub = parser.add_subparsers(metavar="COMMAND")

    p = sub.add_parser("presets", help="list the presets")
    p.set_defaults(handler=cmd_presets)

    p = sub.add_parser("train", help="train (or resume) a run headless")
    p.add_argument("--preset", default=None, help="preset name (default tiny-cpu); see `presets`")
    p.add_argument("--data", default=None, help="folder of audio files (default: the demo corpus)")
    # --run-dir is the same option under another name: torchrun's own parser claims any
    # argument that starts like its --run-path, so `torchrun ... -m vqstudio train --run` fails.
    p.add_argument("--run", "--run-dir", dest="run", required=True,
                   help="run folder; an existing run is resumed (use --run-dir under torchrun)")
    p.add_argument("--steps", type=int, default=None, help="train until this global step")
    p.add_argument("--from", dest="fork_from", default=None, metavar="RUN[:STEP|:best]",
                   help="fork: start the new --run from this run's checkpoint, with --set changes")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. --set train.lr=1e-4 (repeatable)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or mps")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("reconstruct", help="encode and decode an audio file with a trained run")
    p.add_argument("--run", required=True)
    p.add_argument("--checkpoint", default=None, help="a checkpoint file (default: the latest)")
    p.add_argument("--levels", type=int, default=None, help="decode with the first K levels only")
    p.add_argument("--device", default="cpu")
    p.add_argument("input")
    p.add_argument("output", help="a .wav or .flac path")
    p.set_defaults(handler=cmd_reconstruct)

    p = sub.add_parser("eval", help="measure a run's reconstructions of a folder of audio")
    p.add_argument("--run", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--levels", type=int, default=None)
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    p.add_argument("--max-seconds", type=float, default=30.0, help="per file, from its start")
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=cmd_eval)

    p = sub.add_parser("compare", help="measure several runs or checkpoints on the same clips, one table")
    p.add_argument("refs", nargs="+", metavar="RUN[:CKPT]",
                   help="a run folder, optionally :STEP, :best, :latest or :step-XXXXXXXX.pt")
    p.add_argument("--data", required=True, help="folder of audio files (or a manifest) to measure on")
    p.add_argument("--levels", type=int, default=None)
    p.add_argument("--json", default=None, help="also write one entry per run to this JSON file")
    p.add_argument("--max-seconds", type=float, default=30.0, help="per file, from its start")
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser("diagnose", help="name a run's distortions, their causes and the settings that fix them")
    from vqstudio.diagnose.command import add_arguments as add_diagnose_arguments, run as cmd_diagnose

    add_diagnose_arguments(p)
    p.set_defaults(handler=cmd_diagnose)

    p = sub.add_parser("prepare", help="decode and resample a corpus once into memory-mapped shards")
    p.add_argument("data", help="folder of audio files, or a manifest (.txt, .jsonl, Lhotse .jsonl.gz)")
    p.add_argument("--out", required=True, help="new folder for the prepared dataset")
    p.add_argument("--sample-rate", type=int, default=24000, help="the model's rate (default 24000)")
    p.add_argument("--dtype", choices=("int16", "float16"), default="int16")
    p.set_defaults(handler=cmd_prepare)

    p = sub.add_parser("app", help="start the desktop app")
    from vqstudio.app.main import add_arguments as add_app_arguments  # Qt-free; Qt loads in run_app

    add_app_arguments(p)
    p.set_defaults(handler=cmd_app)

    p = sub.add_parser("install-desktop",
                       help="add VQ Studio to the Linux applications menu (desktop entry and icon)")
    p.add_argument("--uninstall", action="store_true", help="remove the entry and icon again")
    p.set_defaults(handler=cmd_install_desktop)
    return parser


class _VersionAction(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        from vqstudio.version import version_text

        print(version_text())
        parser.exit()


# -- presets ----------------------------------------------------------------------------------


def cmd_presets(args) -> int:
    from vqstudio.config import DEFAULT_PRESET, preset_names, preset_summary

    for name in preset_names():
        mark = " (default)" if name == DEFAULT_PRESET else ""
        print(f"{name:<16}{preset_summary(name)}{mark}")
    return 0


# -- train ------------------------------------------------------------------------------------


def _distributed():
    """(rank, world, wrap) under torchrun; (0, 1, None) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None, None
    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = None
    if backend == "nccl":
        torch.cuda.set_device(local)
        device = f"cuda:{local}"

    def wrap(model):
        from torch.nn.parallel import DistributedDataParallel

        ids = [local] if backend == "nccl" else None
        return DistributedDataParallel(model, device_ids=ids)

    return rank, world, wrap, device


def cmd_train(args) -> int:
    from vqstudio.config import DEFAULT_PRESET, load_preset
    from vqstudio.train.runfolder import RunFolder
    from vqstudio.train.stopping import StopSignals
    from vqstudio.train.trainer import Trainer

    run = RunFolder(args.run)
    overrides = list(args.set)
    if args.fork_from:  # experiments/fork.py writes NEW; it then resumes like any run
        config = _fork(args, run)
    elif run.exists():
        config = run.load_config()
        if args.preset or args.set or args.data:
            print(f"Resuming {run.path}: its config.toml wins over --preset/--set/--data.")
    else:
        config = load_preset(args.preset or DEFAULT_PRESET, overrides)
        if args.data:
            if not Path(args.data).exists():
                raise UserError(f"--data {args.data}: no such folder or manifest",
                                "give a folder of audio files, a manifest or a prepared dataset")
            config = config.with_overrides({"data.path": str(Path(args.data).resolve())})
    rank, world, wrap, dist_device = _distributed()
    # SIGTERM, SIGINT and SIGHUP finish the step and save; SIGUSR1 saves and goes on.
    with StopSignals() as signals:
        trainer = Trainer(config, run.path, device=dist_device or args.device, rank=rank, world=world,
                          wrap=wrap)
        if trainer.lock is not None and trainer.lock.taken_over:
            print(f"Note: {trainer.lock.taken_over}.", flush=True)
        try:
            return _train(trainer, run, args.steps, signals, rank, world)
        finally:
            trainer.close()
            if world > 1:
                import torch.distributed as dist

                dist.destroy_process_group()


def _fork(args, run):
    from vqstudio.experiments.fork import fork_run

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("--from cannot fork under torchrun (every rank would write the fork)",
                        "fork first with plain `vqstudio train --from ... --run NEW --steps 0`, "
                        "then train NEW under torchrun")
    if args.preset:
        raise UserError("--preset does not go with --from: a fork starts from its parent's settings",
                        "change settings with --set section.key=value")
    data = str(Path(args.data).resolve()) if args.data else None
    if data is not None and not Path(data).exists():
        raise UserError(f"--data {args.data}: no such folder or manifest",
                        "give a folder of audio files, a manifest or a prepared dataset")
    print(fork_run(args.fork_from, run.path, list(args.set), data=data).summary, flush=True)
    return run.load_config()


def _train(trainer, run, target: int | None, signals, rank: int, world: int) -> int:
    from vqstudio.train.progress import Progress

    quiet = rank != 0
    if trainer.data.report and not quiet:
        for line in trainer.data.report.splitlines():
            print(line)
    if target is not None and trainer.step_count >= target:
        if not quiet:
            print(f"{run.path} is already at step {trainer.step_count} (asked for {target}); nothing to do.")
        return 0
    if not quiet:
        print(f"Training {trainer.config.preset or 'custom'} on {trainer.device} from step "
              f"{trainer.step_count}{f' to {target}' if target else ''}; run folder {run.path}", flush=True)
    progress = Progress(trainer.step_count, target, enabled=not quiet)
    try:
        for report in trainer.steps(until=target):
            progress.update(report)
            signals.serve(trainer, world)
    finally:
        progress.close()
    path = trainer.save_checkpoint(reason="stop" if signals.stop_signal else "end")
    if not quiet:
        where = path if path is not None else run.checkpoint_dir
        if signals.stop_signal:
            print(f"Stopped by {signals.stop_signal} at step {trainer.step_count}; checkpoint saved: {where}")
        else:
            print(f"Done at step {trainer.step_count}; checkpoint saved: {where}")
    return 0


# -- reconstruct and eval ---------------------------------------------------------------------


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
                      device=args.device,
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


# -- app --------------------------------------------------------------------------------------


def cmd_app(args) -> int:
    try:
        from vqstudio.app.main import run_app
    except ImportError as exc:
        raise UserError(f"the desktop app cannot start ({exc})",
                        "install the project with `make run` or `pip install -e .`") from None
    return run_app(args)


# -- install-desktop --------------------------------------------------------------------------


def cmd_install_desktop(args) -> int:
    from vqstudio import desktop

    if args.uninstall:
        removed = desktop.uninstall()
        print("\n".join(f"removed {p}" for p in removed) or "VQ Studio's desktop entry was not installed.")
        return 0
    for path in desktop.install():
        print(f"wrote {path}")
    return 0


# -- prepare ------------------------------------------------------------------------------------


def cmd_prepare(args) -> int:
    from vqstudio.audio import prepared

    dataset, report = prepared.prepare(args.data, args.out, args.sample_rate, dtype=args.dtype)
    print(report)
    print(f"Prepared {prepared.describe(dataset)}; train on it with --data {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
