"""The Losses panel of an older source tree against this one, frame by frame in one process.

On a shared machine two runs of ``loss_redraw.py`` minutes apart see different loads; here both
panels live in one process and their frames alternate (old, new, new, old, ...), so each pair of
frames meets the same load. The old tree's ``vqstudio`` package is copied to a temporary folder
as ``vqstudio_before`` (its own imports renamed) and imported beside this tree's. Both panels get
the same 8 curves x ``--points`` rows and 10 markers at 1400 x 700, and one frame is what
``loss_redraw.py`` times (refresh + processEvents + grab), panning/zooming or following the run
with 10 new points a frame, raw and EMA 0.99. Prints wall and GUI-thread CPU p50/p95 per panel and the
ratio of the CPU medians (new / old). Figures, not assertions.

    .venv/bin/python benchmarks/loss_redraw_paired.py --old /tmp/old_tree [--points 1000000] [--frames 60]

(make an old tree with ``git worktree add --detach /tmp/old_tree <commit>`` or ``git archive``.)
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from loss_redraw import fake_curves  # noqa: E402
from vqstudio.app import theme  # noqa: E402

BEFORE = "vqstudio_before"
IMPORT = re.compile(r"\bvqstudio(?=[.\s])")


def import_old(tree: Path, into: Path):
    """``tree``'s vqstudio package as ``vqstudio_before``: (its store module, its losses module)."""
    target = into / BEFORE
    shutil.copytree(tree / "vqstudio", target, ignore=shutil.ignore_patterns("__pycache__"))
    for source in target.rglob("*.py"):
        text = source.read_text()
        source.write_text(IMPORT.sub(BEFORE, text))
    sys.path.insert(0, str(into))
    return (importlib.import_module(f"{BEFORE}.app.store"),
            importlib.import_module(f"{BEFORE}.app.panels.losses"))


def build(app, store_module, losses_module, points: int):
    """A panel of ``losses_module`` on a store of ``store_module`` with the benchmark's data."""
    terms = [f"term_{i}" for i in range(7)] + ["total"]
    store = store_module.RunStore()
    store.on_started({"device": "cpu", "preset": "bench", "run_dir": None, "step": 0,
                      "weights": {t: 1.0 for t in terms[:-1]}, "term_names": terms[:-1],
                      "sample_rate": 24000, "rvq_levels": 4, "codebook_size": 256, "lr": 3e-4,
                      "balancer": "static"})
    store.on_scalars(fake_curves(terms, points, 0, np.random.default_rng(0)))
    store.on_events([{"kind": "weights", "step": s, "changes": {terms[0]: [1.0, 2.0]}}
                     for s in range(50_000, points, 100_000)])
    panel = losses_module.LossPanel(store, None)
    panel.resize(1400, 700)
    panel.refresh()
    app.processEvents()
    panel.grab()
    return {"store": store, "panel": panel, "terms": terms, "rng": np.random.default_rng(1)}


@contextlib.contextmanager
def old_and_new(old_tree: Path, points: int, prefix: str):
    """The Qt application and two panels with the benchmark's data: ``old_tree``'s and this
    tree's (``{"old": side, "new": side}``); the copied old package is removed afterwards."""
    app = QApplication.instance() or QApplication([])
    theme.apply_theme(app)
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        old_store, old_losses = import_old(old_tree.resolve(), scratch)
        new_store = importlib.import_module("vqstudio.app.store")
        new_losses = importlib.import_module("vqstudio.app.panels.losses")
        yield app, {"old": build(app, old_store, old_losses, points),
                    "new": build(app, new_store, new_losses, points)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def frame(app, side: dict, i: int, mode: str, points: int) -> tuple[float, float]:
    store, panel = side["store"], side["panel"]
    if mode == "follow":
        store.on_scalars(fake_curves(side["terms"], 10, len(store.steps), side["rng"]))
    wall, cpu = time.perf_counter(), time.thread_time()
    if mode == "pan":
        width = points * (0.01 + 0.99 * (0.5 + 0.5 * np.cos(i / 7.0)))
        centre = points * (0.1 + 0.8 * ((i * 0.37) % 1.0))
        panel.plot_item.setXRange(centre - width / 2, centre + width / 2, padding=0)
    panel.refresh()
    app.processEvents()
    panel.grab()
    return time.perf_counter() - wall, time.thread_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the 'before' source tree")
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()

    with old_and_new(args.old, args.points, "vqstudio-paired-") as (app, sides):
        print(f"Losses panel, 8 curves x {args.points:,} points, 1400x700, old ({args.old}) and "
              f"new frames alternating; ms per frame (cpu: GUI-thread CPU time); load average "
              f"{os.getloadavg()[0]:.1f}")
        for smoothing in (0.0, 0.99):
            for mode in ("pan", "follow"):
                for side in sides.values():
                    side["panel"].set_smoothing(smoothing)
                    if mode == "follow":
                        side["panel"].plot_item.enableAutoRange()
                    frame(app, side, 0, mode, args.points)
                samples = {k: [] for k in sides}
                for i in range(args.frames):
                    for key in ("old", "new") if i % 2 == 0 else ("new", "old"):
                        samples[key].append(frame(app, sides[key], i, mode, args.points))
                line = f"  {'raw' if smoothing == 0 else f'EMA {smoothing}':<9} {mode:<7}"
                for key, values in samples.items():
                    ms = np.asarray(values) * 1e3
                    line += (f" | {key}: wall p50 {np.percentile(ms[:, 0], 50):5.1f} p95 "
                             f"{np.percentile(ms[:, 0], 95):5.1f}, cpu p50 "
                             f"{np.percentile(ms[:, 1], 50):5.1f} p95 {np.percentile(ms[:, 1], 95):5.1f}")
                old, new = (np.median(np.asarray(samples[k])[:, 1]) for k in ("old", "new"))
                print(f"{line} | cpu new/old {new / old:.2f} | load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
