"""``vqstudio diagnose --run DIR [--checkpoint C] [--data DIR] [--split S] [--match GLOB] [--json OUT] [--report OUT.html]
[--mos] [--verify REMEDY --steps N [--fork NEW] [--control [--control-fork C]]]``:
the diagnosis of a run's checkpoint, printed as a ranked list, optionally written as JSON (``step``
and ``findings``, each with ``id``, ``severity``, ``title``, ``evidence``, ``remedies``) and as one
self-contained HTML page. Bad input is a :class:`~vqstudio.errors.UserError` (one line, exit 2);
no file is written unless the diagnosis succeeded."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

from vqstudio.atomic import atomic_write_text
from vqstudio.errors import UserError


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, help="the run folder to diagnose")
    p.add_argument("--checkpoint", default=None,
                   help="a step, best, latest (the default) or a step-XXXXXXXX.pt file of the run")
    p.add_argument("--data", default=None,
                   help="folder of audio to diagnose on (default: the run's corpus); --split and "
                        "--match pick its files")
    p.add_argument("--split", choices=("validation", "all", "training"), default="validation",
                   help="diagnose on this split of the data (the one the run's data.val_fraction and "
                        "data.seed make; default validation)")
    p.add_argument("--match", default=None, metavar="GLOB",
                   help="only files whose name matches, e.g. 'speech*'")
    p.add_argument("--json", default=None, help="write the findings to this JSON file")
    p.add_argument("--report", default=None, help="write a self-contained HTML report here")
    p.add_argument("--max-seconds", type=float, default=10.0, help="of each clip, from its start")
    p.add_argument("--clips", type=int, default=3, help="at most this many clips")
    p.add_argument("--verify", default=None, metavar="REMEDY", action="append",
                   help="fork with this remedy (a finding id, ID#2 for its second, or setting=value; "
                        "several setting=value, each after its own --verify, change together), "
                        "train --steps, and diagnose parent and fork side by side")
    p.add_argument("--steps", type=int, default=100, help="with --verify: steps the fork trains")
    p.add_argument("--fork", default=None, help="with --verify: the fork's run folder "
                                                "(default RUN-verify-<setting> beside the run)")
    p.add_argument("--control", action="store_true",
                   help="with --verify: also fork with no change and train it the same --steps, so the "
                        "extra steps alone are told apart from the change")
    p.add_argument("--control-fork", default=None, help="with --control: the control fork's run folder "
                                                        "(default RUN-verify-control beside the run)")
    p.add_argument("--mos", action="store_true",
                   help="also score one clip with DNSMOS (a speech model; seconds of CPU)")


def run(args) -> int:
    from vqstudio.diagnose.report import format_text, write_html
    from vqstudio.diagnose.runner import diagnose

    for option, path, suffix in (("--json", args.json, ".json"), ("--report", args.report, ".html")):
        if path and not Path(path).parent.is_dir():
            raise UserError(f"{option} {path}: the folder {Path(path).parent} does not exist",
                            "create it first or write somewhere else")
    if args.clips < 1 or not (args.max_seconds > 0):
        raise UserError("--clips and --max-seconds must be positive", "e.g. --clips 3 --max-seconds 10")
    ref = args.run if args.checkpoint is None else f"{args.run}:{args.checkpoint}"
    if args.checkpoint is not None and not Path(args.run).is_dir():
        raise UserError(f"{args.run}: no such run folder", "check the path (a folder holding config.toml)")
    from vqstudio.diagnose.runner import clip_files
    from vqstudio.experiments.checkpoint_ref import resolve_ref

    clips = clip_files(resolve_ref(ref).config, args.data, args.split, args.match)[: args.clips]
    if args.verify:
        return _verify(ref, args)
    if args.control or args.control_fork:
        raise UserError("--control needs --verify", "e.g. --verify noise_floor --steps 200 --control")
    diagnosis = diagnose(ref, clips, max_seconds=args.max_seconds, max_clips=args.clips, mos=args.mos)
    return _emit(diagnosis, format_text(diagnosis), write_html, args)


def _emit(result, text: str, write_report, args) -> int:
    """Print ``text``; write ``result`` as JSON (--json) and as an HTML report (--report)."""
    print(text)
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(result.to_dict(), indent=2) + "\n")
    if args.report:
        write_report(result, args.report)
    return 0


def _verify(ref: str, args) -> int:
    from vqstudio.diagnose.report import write_verify_html
    from vqstudio.diagnose.before_after import format_text
    from vqstudio.diagnose.verify import Progress, verify

    v = verify(ref, args.verify, args.steps, fork_dir=args.fork, control=args.control or bool(args.control_fork),
               control_dir=args.control_fork, data=args.data, split=args.split,
               match=args.match, max_seconds=args.max_seconds,
               max_clips=args.clips, mos=args.mos, progress=Progress(listener=ConsoleProgress()))
    return _emit(v, format_text(v), write_verify_html, args)


class ConsoleProgress:
    """A verify's progress, for the minutes it trains: each phase as it starts, then the fork's
    step every ``EVERY_S`` seconds and at its last step, one line each (fine in a log), on stdout
    as ``vqstudio train`` prints its own (stderr stays the one line of an error)."""

    EVERY_S = 10.0

    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.shown = self.phase = None
        self.at = -math.inf

    def __call__(self, progress) -> None:
        text, now = progress.text(), time.monotonic()
        new_phase = progress.phase != self.phase
        last_step = progress.phase.startswith("training") and progress.step == progress.steps
        if text == self.shown or not (new_phase or last_step or now - self.at >= self.EVERY_S):
            return
        print(text, file=self.stream, flush=True)
        self.shown, self.phase, self.at = text, progress.phase, now
