"""``vqstudio set --run DIR mrstft=2 lr=5e-4 loss.mel_norm=log``: change live settings of a run
that another process trains (or will resume), through its control file (``train/control_file.py``).

Names are checked here against the run's configuration before anything is written: a loss term
(``mrstft``, ``loss.weights.mel_l1/1024``), or a live setting of ``train/settings.py`` with or
without its section (``lr``, ``train.lr``, ``loss.mel_norm``). A setting that cannot change while
training is refused with the fork that does it. Values are checked by the trainer, which logs each
change as an event with its step (or ``refused``); ``--wait S`` waits for those and prints them.
"""

from __future__ import annotations

import time

from vqstudio.config_values import parse_override, set_dotted
from vqstudio.errors import ConfigError, UserError
from vqstudio.experiments.run_tail import RunTail, who_trains
from vqstudio.train.control_file import append_changes, live_names, resolve, setting_keys
from vqstudio.train.runfolder import RunFolder
from vqstudio.train.settings import SETTINGS


def add_arguments(parser) -> None:
    parser.add_argument("--run", "--run-dir", dest="run", required=True, help="the run folder to steer")
    parser.add_argument("changes", nargs="+", metavar="KEY=VALUE",
                        help="a loss weight (mrstft=2), lr=5e-4, loss.mel_norm=log, ... (values as in --set)")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="wait up to this long for the trainer to apply them, and print what it did")


def checked_changes(run: RunFolder, texts: list[str]) -> list[tuple[str, object]]:
    """``[(name, value)]`` from ``KEY=VALUE`` texts, every name known to be live in ``run``."""
    parsed = [parse_override(text) for text in texts]  # a missing "=" first: no file needed
    config = run.load_config()
    terms = config.loss.term_names()
    changes = []
    for key, value in parsed:
        if resolve(key, SETTINGS, terms, setting_keys()) is None:
            raise _not_live(run, config, key, value, terms)
        changes.append((key, value))
    return changes


def _not_live(run: RunFolder, config, key: str, value, terms) -> UserError:
    try:
        set_dotted(config.to_dict(), key, value)
        known = True
    except (ConfigError, KeyError, AttributeError, TypeError):
        known = False
    if known:
        return UserError(f"{key} cannot change while a run trains",
                         f"fork the run with it changed: vqstudio train --from {run.path} --run NEW "
                         f"--set {key}={value}")
    return UserError(f"{key} is not a live setting of {run.path}",
                     f"live settings: {', '.join(live_names(SETTINGS, terms))}")


def run(args) -> int:
    folder = RunFolder(args.run)
    changes = checked_changes(folder, list(args.changes))
    tail = RunTail(folder.path)
    tail.poll()  # from here on, only what the trainer writes in answer
    try:
        lines = append_changes(folder.path, changes)
    except OSError as exc:
        raise UserError(f"cannot write {folder.path}/control.jsonl ({exc.strerror or exc})",
                        "check that the run folder is writable from here") from None
    asked = ", ".join(f"{line['setting']}={line['value']!r}" for line in lines)
    holder = who_trains(folder.path)
    if holder.following:
        print(f"Asked for {asked}; {folder.path} is {holder.describe()}: applied at its next step.")
    else:
        print(f"Asked for {asked}; {folder.path}: {holder.describe()}, so they apply when it is resumed.")
    if args.wait > 0:
        return _wait(tail, {line["id"]: line for line in lines}, args.wait)
    return 0


def _wait(tail: RunTail, waiting: dict[str, dict], seconds: float) -> int:
    """Print each answer as it comes; 0 if all applied, 2 if one was refused or none came."""
    deadline = time.monotonic() + seconds
    refused = False
    while waiting and time.monotonic() < deadline:
        for event in tail.poll().events:
            line = waiting.pop(str(event.get("control")), None)
            if line is None:
                continue
            if event.get("kind") == "refused":
                refused = True
                print(f"{line['setting']}: refused at step {event.get('step')}: {event.get('reason')}")
            else:
                print(f"{line['setting']}={line['value']!r}: applied at step {event.get('step')}")
        time.sleep(0.05)
    if waiting:
        raise UserError(f"no answer within {seconds:g} s for {', '.join(w['setting'] for w in waiting.values())}",
                        "the changes stay queued in control.jsonl; is the run still training?")
    return 2 if refused else 0
