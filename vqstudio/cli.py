"""VQ Studio: train, measure, compare and diagnose RVQ audio codecs, or start the desktop app.

This module builds the parser (``presets | train | reconstruct | eval | compare | diagnose | set | prepare
| app | install-desktop``); the larger commands live in ``vqstudio/commands/`` (and
``diagnose/command.py``). Every mistake a user can make ends as one line on stderr naming the
problem and the fix, and exit status 2; nothing prints a traceback unless it is a bug.
"""

from __future__ import annotations

import argparse
import sys

from vqstudio.commands.measure import cmd_compare, cmd_eval, cmd_reconstruct
from vqstudio.commands.train import cmd_train
from vqstudio.errors import UserError
from vqstudio.train.memory_reuse import keep_freed_memory

EXIT_USAGE = 2


def main(argv: list[str] | None = None) -> int:
    keep_freed_memory()  # before any thread allocates: train/memory_reuse.py
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
    p.add_argument("--data", default=None,
                   help="folder of audio files (or a manifest) to measure on (default: the first run's corpus)")
    p.add_argument("--levels", type=int, default=None)
    p.add_argument("--json", default=None, help="also write one entry per run to this JSON file")
    p.add_argument("--max-seconds", type=float, default=30.0, help="per file, from its start")
    p.add_argument("--device", default="cpu")
    p.add_argument("--denoise", type=float, default=None, metavar="STRENGTH",
                   help="add a row per run: its reconstructions through a spectral-gating denoiser (0..1)")
    p.add_argument("--mos", action="store_true",
                   help="add DNSMOS background, signal and overall (speechmos; a speech model, seconds per clip)")
    p.add_argument("--split", choices=("all", "validation", "training"), default="all",
                   help="measure only the split the first run's data.val_fraction and data.seed make")
    p.add_argument("--match", default=None, metavar="GLOB",
                   help="measure only files whose name matches, e.g. 'speech*'")
    p.set_defaults(handler=cmd_compare)

    p = sub.add_parser("diagnose", help="name a run's distortions, their causes and the settings that fix them")
    from vqstudio.diagnose.command import add_arguments as add_diagnose_arguments, run as cmd_diagnose

    add_diagnose_arguments(p)
    p.set_defaults(handler=cmd_diagnose)

    p = sub.add_parser("set", help="change live settings of a run another process trains (its control file)")
    from vqstudio.experiments.set_command import add_arguments as add_set_arguments, run as cmd_set

    add_set_arguments(p)
    p.set_defaults(handler=cmd_set)

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
