"""Before/after on a noisy machine: one Python command run under two source trees, interleaved.

    python benchmarks/interleaved.py --old /tmp/old_speed --repeat 5 -- \
        -c "import sys; sys.path.insert(0, 'benchmarks'); from train_speed import measure; \
            print(measure('tiny-cpu', 'cpu', 1, 8)[0])"

Each run is a fresh interpreter started in the tree's root with ``PYTHONPATH`` set to it, so
``vqstudio`` and ``benchmarks/`` come from that tree (make an old tree with
``git worktree add /tmp/old_speed <commit>``). The figure is the last number the command prints.
Runs alternate old, new, old, new... so both see the same background load; the medians and their
ratio (new / old) are printed. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

NUMBER = re.compile(r"[-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


def run_once(tree: Path, args: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, *args], cwd=tree, env=env, capture_output=True,
                          text=True, check=False)
    numbers = NUMBER.findall(done.stdout)
    if done.returncode or not numbers:
        raise SystemExit(f"{tree}: exit {done.returncode}, no figure\n{done.stdout}{done.stderr}")
    return float(numbers[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, required=True, help="the 'before' source tree")
    parser.add_argument("--new", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- python arguments")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    figures: dict[str, list[float]] = {"old": [], "new": []}
    for i in range(args.repeat):
        for label, tree in (("old", args.old), ("new", args.new)):
            figures[label].append(run_once(tree.resolve(), command))
            print(f"run {i + 1} {label}: {figures[label][-1]:.4g}", flush=True)
    old, new = (statistics.median(figures[k]) for k in ("old", "new"))
    print(f"median old {old:.4g}, new {new:.4g}, new/old {new / old:.3f}")


if __name__ == "__main__":
    main()
