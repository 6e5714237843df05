"""The Losses panel of an older source tree and this one's, pixel for pixel, in one process.

A speed change to the panel should leave its picture as it was. Both panels (the old tree's
``vqstudio`` imported as ``vqstudio_before``, as ``loss_redraw_paired.py`` does) get the same 8
curves and 10 markers at 1400 x 700 and go through the same steps: views panned and zoomed (down
to a few points per pixel, where the curves are lines), following the run as points arrive, EMA
smoothing, a hidden curve, each x mode, linear y. After each step both are grabbed and the
differing pixels counted. Prints one line per step and the worst count (0: the same picture).

    .venv/bin/python benchmarks/loss_redraw_pixels.py --old /tmp/old_tree [--points 200000]
    QT_SCALE_FACTOR=2 .venv/bin/python benchmarks/loss_redraw_pixels.py --old ...   (HiDPI)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from loss_redraw import fake_curves  # noqa: E402
from loss_redraw_paired import old_and_new  # noqa: E402

FOLLOW = "follow"


def steps(points: int) -> list:
    """What both panels go through: x ranges as fractions of the run, or a named step."""
    views = [(0, 1), (0.3, 0.31), (0.5, 0.5004), (0.1, 0.9), FOLLOW, FOLLOW, FOLLOW,
             ("smoothing", 0.99), (0.2, 0.6), FOLLOW, FOLLOW, ("hide", "term_2"), (0.4, 0.41),
             FOLLOW, ("smoothing", 0.0)]
    for mode in ("time", "audio", "step"):
        views += [("x", mode), (0.2, 0.7), FOLLOW, FOLLOW, (0.1, 0.12), FOLLOW]
    views += [("log", False), FOLLOW, (0.3, 0.5), FOLLOW]
    return views + [FOLLOW] * 20


def apply(app, side: dict, step, points: int, seed: int) -> None:
    panel, store = side["panel"], side["store"]
    # Both panels share the event loop: what one's last grab left pending (a layout request)
    # is handled now, not in the middle of the other's step.
    app.processEvents()
    if step == FOLLOW:
        rows = len(store.steps)
        store.on_scalars(fake_curves(side["terms"], 10, rows, np.random.default_rng(seed)))
        panel.plot_item.enableAutoRange()
    elif step[0] == "smoothing":
        panel.set_smoothing(step[1])
    elif step[0] == "hide":
        panel.set_curve_visible(step[1], False)
    elif step[0] == "x":
        panel.set_x_mode(step[1])
    elif step[0] == "log":
        panel.log_y.setChecked(step[1])
    else:
        panel.plot_item.setXRange(step[0] * points, step[1] * points, padding=0)
    panel.refresh()
    app.processEvents()


def pixels(panel) -> np.ndarray:
    image = panel.grab().toImage()
    return np.frombuffer(image.constBits(), np.uint32).reshape(image.height(), -1).copy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the 'before' source tree")
    parser.add_argument("--points", type=int, default=200_000)
    args = parser.parse_args()

    with old_and_new(args.old, args.points, "vqstudio-pixels-") as (app, pair):
        sides = [pair["old"], pair["new"]]
        print(f"Losses panel of {args.old} and of this tree, 8 curves x {args.points:,} points, "
              f"device pixel ratio {app.primaryScreen().devicePixelRatio():g}")
        worst = 0
        for number, step in enumerate(steps(args.points)):
            for side in sides:
                apply(app, side, step, args.points, seed=number)
            before, after = (pixels(side["panel"]) for side in sides)
            if before.shape != after.shape:
                raise SystemExit(f"step {number} {step}: grabs of {before.shape} and {after.shape}")
            differ = int((before != after).sum())
            worst = max(worst, differ)
            print(f"  {number:3d} {str(step):24s} differing pixels {differ:7d} of {before.size}",
                  flush=True)
        print(f"worst: {worst} differing pixels" + (" (the same picture)" if worst == 0 else ""))


if __name__ == "__main__":
    main()
