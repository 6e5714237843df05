"""``reconstruct`` of a 10 s clip as times real time, on process CPU time per thread: the figure
to compare on a shared machine, where wall time counts other people's processes.

    python benchmarks/reconstruct_speed.py [--preset tiny-cpu] [--threads 1] [--repeats 5]

Uses only ``Codec``, ``load_preset`` and ``reconstruct``, so the same file can time an older tree
through ``interleaved.py`` (it is run from that tree's root, with that tree's ``vqstudio``)::

    git worktree add --detach /tmp/old_speed <commit>
    python benchmarks/interleaved.py --old /tmp/old_speed --repeat 5 -- \\
        "$PWD/benchmarks/reconstruct_speed.py" --preset tiny-cpu --threads 1

The last figure printed is the median over ``--repeats`` after one warm-up. Figures, not
assertions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path.cwd()))  # the tree it is run from (interleaved.py sets cwd)

from vqstudio.config import load_preset  # noqa: E402
from vqstudio.model import Codec  # noqa: E402
from vqstudio.model.inference import reconstruct  # noqa: E402

SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Codec(load_preset(args.preset).model)
    rate = model.sample_rate
    t = torch.arange(int(SECONDS * rate)) / rate
    g = torch.Generator().manual_seed(0)
    wave = (0.2 * sum(torch.sin(2 * torch.pi * 220.0 * h * t) / h for h in range(1, 6))
            + 0.01 * torch.randn(t.shape, generator=g)).numpy().astype("float32")
    reconstruct(model, wave)
    times = []
    for _ in range(args.repeats):
        start = time.process_time()
        reconstruct(model, wave)
        times.append((time.process_time() - start) / args.threads)
    print(f"{args.preset} reconstruct {SECONDS:g} s on {args.threads} thread(s), CPU clock: "
          f"{statistics.median(times) * 1e3:.1f} ms = {SECONDS / statistics.median(times):.2f}")


if __name__ == "__main__":
    main()
