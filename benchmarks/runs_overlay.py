"""Opening and overlaying 5 runs of 100k rows in the real window (offscreen).

Generates ``--runs`` run folders of ``--rows`` rows (config.toml, metrics.csv with 8 loss columns
plus bookkeeping and weights, events.jsonl) under a temporary folder, then in a real MainWindow:

- open: the first as the current run (File > Open, read in the background), then the others
  added to the Runs list at once (read one after another in a background thread), timed until
  every one is drawn on the Losses panel; meanwhile a 33 ms timer (the window's redraw rate)
  records the longest gap the GUI thread left between two ticks, i.e. how long the window was
  unresponsive;
- pan: ``--redraws`` frames of panning and zooming across the runs (from the whole run down to 1 %
  of it), each frame = setXRange + the window's redraw + processEvents, in which the shown window
  repaints what changed: the Losses plot exactly once (counted; a ``grab()`` on top, as this
  benchmark did before, painted the panel a second time), with the 5 runs overlaid (the total, then the total and two more terms), and the
  same frames with only the current run (its own curves) for comparison, interleaved by block.

Prints medians and p99 in ms, wall and CPU (on a shared machine the wall time includes waiting
for a core).

    .venv/bin/python benchmarks/runs_overlay.py [--runs 5] [--rows 100000] [--redraws 60]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QObject, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from vqstudio.app import theme  # noqa: E402
from vqstudio.app.window import MainWindow  # noqa: E402
from vqstudio.config import load_preset  # noqa: E402
from vqstudio.train.runfolder import RunFolder  # noqa: E402


def write_run(folder: Path, rows: int, seed: int) -> None:
    config = load_preset("tiny-cpu")
    run = RunFolder.create(folder, config)
    terms = config.loss.term_names()
    rng = np.random.default_rng(seed)
    steps = np.arange(1, rows + 1, dtype=np.float64)
    columns = {"step": steps, "wall_time": 1.7e9 + steps * 0.3, "elapsed": steps * 0.3,
               "lr": np.full(rows, 3e-4), "grad_norm": rng.gamma(2.0, 1.0, rows)}
    losses = {t: (np.exp(-steps / 4e4) * (1 + i) + 0.1) * np.exp(rng.normal(0, 0.2, rows))
              for i, t in enumerate(terms)}
    columns["total"] = sum(losses.values())
    columns.update(losses)
    columns.update({f"weight/{t}": np.full(rows, 1.0) for t in terms})
    table = np.column_stack(list(columns.values()))
    with run.metrics_path.open("w") as handle:
        handle.write(",".join(columns) + "\n")
        np.savetxt(handle, table, fmt="%.7g", delimiter=",")
    run.events_path.write_text('{"kind": "start", "step": 0, "time": 0}\n')


class PaintCounter(QObject):
    """Counts the paint events of the widget it filters."""

    def __init__(self):
        super().__init__()
        self.count = self.forced = 0

    def eventFilter(self, _watched, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def stats(samples: list[tuple[float, float]]) -> str:
    wall, cpu = (np.asarray(s) * 1e3 for s in zip(*samples))
    return (f"p50 {np.percentile(wall, 50):6.1f}  p99 {np.percentile(wall, 99):6.1f} ms"
            f"  (cpu p50 {np.percentile(cpu, 50):5.1f}  p99 {np.percentile(cpu, 99):5.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--redraws", type=int, default=60)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    theme.apply_theme(app)
    root = Path(tempfile.mkdtemp(prefix="vqstudio-runs-overlay-"))
    t0 = time.perf_counter()
    folders = [root / f"run{i}" for i in range(args.runs)]
    for i, folder in enumerate(folders):
        write_run(folder, args.rows, i)
    size = sum((f / "metrics.csv").stat().st_size for f in folders) / 1e6
    print(f"{args.runs} runs x {args.rows:,} rows generated in {time.perf_counter() - t0:.1f} s "
          f"({size:.0f} MB of metrics.csv)")

    window = MainWindow(QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat), player=None)
    window.resize(1560, 960)
    window.show()
    app.processEvents()
    losses = window.panels["losses"]

    # -- open -----------------------------------------------------------------------------------
    gaps, last = [], [time.perf_counter()]

    cpu_gaps, last_cpu = [], [time.thread_time()]

    def tick() -> None:
        now, now_cpu = time.perf_counter(), time.thread_time()
        gaps.append(now - last[0])
        cpu_gaps.append(now_cpu - last_cpu[0])  # what the GUI thread itself did in the gap
        last[0], last_cpu[0] = now, now_cpu

    ticker = QTimer()
    ticker.setInterval(33)
    ticker.timeout.connect(tick)
    ticker.start()
    wall, cpu = time.perf_counter(), time.process_time()
    window.open_run(folders[0])  # the current run: File > Open, read in the background
    while window.opening.busy:
        app.processEvents()
        time.sleep(0.002)
    read_wall, read_gap = time.perf_counter() - wall, max(gaps, default=0.0)
    draw = time.perf_counter()
    window.redraw()
    losses.grab()
    print(f"open the current run (File > Open) and draw it: {time.perf_counter() - wall:.2f} s wall, "
          f"{time.process_time() - cpu:.2f} s cpu; reading {read_wall:.2f} s with the longest GUI gap "
          f"{read_gap * 1e3:.0f} ms, then the first draw {time.perf_counter() - draw:.2f} s on the GUI thread")
    from vqstudio.experiments.run_history import read_history

    wall = time.perf_counter()
    read_history(folders[0])  # what File > Open did on the GUI thread before it read in the background
    print(f"  (the same read on the GUI thread, as Open did before: {time.perf_counter() - wall:.2f} s frozen)")
    gaps.clear()
    cpu_gaps.clear()
    last[0], last_cpu[0] = time.perf_counter(), time.thread_time()
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    keys = [window.runs.add(f) for f in folders[1:]]
    while not (all(not window.runs.entry(k).loading for k in keys)
               and set(keys) <= set(losses.overlay.runs)
               and not getattr(losses.overlay, "pending", lambda: False)()):  # taken in by slices
        app.processEvents()
        time.sleep(0.002)
    window.redraw()
    losses.grab()
    open_wall, open_cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    ticker.stop()
    print(f"add {args.runs - 1} more to the Runs list and draw all {args.runs}: {open_wall:.2f} s wall, {open_cpu:.2f} s cpu "
          f"(this process, all threads); longest GUI gap while reading {max(gaps) * 1e3:.0f} ms "
          f"(the most GUI-thread cpu between two ticks {max(cpu_gaps) * 1e3:.0f} ms), "
          f"median tick {np.median(gaps) * 1e3:.0f} ms (timer 33 ms)")

    # -- pan --------------------------------------------------------------------------------------
    paints = PaintCounter()
    losses.plot_widget.viewport().installEventFilter(paints)

    def frames(count: int, offset: int) -> list[tuple[float, float]]:
        samples = []
        for i in range(count):
            j = i + offset
            width = args.rows * (0.01 + 0.99 * (0.5 + 0.5 * np.cos(j / 7.0)))
            centre = args.rows * (0.1 + 0.8 * ((j * 0.37) % 1.0))
            wall, cpu = time.perf_counter(), time.process_time()
            losses.plot_item.setXRange(centre - width / 2, centre + width / 2, padding=0)
            window.redraw()
            before = paints.count
            app.processEvents()  # the shown window repaints what changed, the plot once
            if paints.count == before:  # (never seen: then paint it now, so every frame has one)
                losses.plot_widget.viewport().repaint()
                paints.forced += 1
            samples.append((time.perf_counter() - wall, time.process_time() - cpu))
        return samples

    def show_all(on: bool) -> None:
        for key in keys:
            window.runs.set_shown(key, on)
        window.redraw()
        losses.grab()

    def tick_terms(names: list[str]) -> None:
        for i in range(losses.term_list.count()):
            entry = losses.term_list.item(i)
            want = entry.data(Qt.ItemDataRole.UserRole) in names
            entry.setCheckState(Qt.CheckState.Checked if want else Qt.CheckState.Unchecked)
        window.redraw()
        losses.grab()

    results: dict[str, list] = {"overlay, total": [], "overlay, 3 terms": [], "one run": []}
    block = max(1, args.redraws // 3)
    for round_ in range(3):
        show_all(True)
        tick_terms(["total"])
        results["overlay, total"] += frames(block, round_ * block)
        tick_terms(["total", "waveform_mse", "commitment"])
        results["overlay, 3 terms"] += frames(block, round_ * block)
        show_all(False)
        results["one run"] += frames(block, round_ * block)
    show_all(True)
    tick_terms(["total"])
    drawn = max(len(c.item.xData) for o in losses.overlay.runs.values() for c in o.curves.values())
    frames_run = sum(len(v) for v in results.values())
    print(f"pan/zoom frames (setXRange + redraw + the window's repaint, the Losses plot "
          f"{int(losses.view_box.width())} px wide painted {paints.count} times in "
          f"{frames_run}+ frames, {paints.forced} forced; at most {drawn} points handed to a curve):")
    for label, samples in results.items():
        print(f"  {label:<18} {stats(samples)}   ({len(samples)} frames)")
    window.close()


if __name__ == "__main__":
    main()
