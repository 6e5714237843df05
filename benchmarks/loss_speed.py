"""The spectral loss terms of one training step with and without the shared STFTs, interleaved.

    .venv/bin/python benchmarks/loss_speed.py [--preset tiny-cpu] [--threads 1] [--repeats 15]

Forward + backward of the mel L1 terms and the MR-STFT term on a batch shaped as the preset says,
once with each term computing its own STFTs (as before ``SharedSpectra``) and once sharing them,
alternating; prints the medians of the process CPU time (the machine may be shared) and the ratio.
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from vqstudio.config import load_preset
from vqstudio.train.losses import LossSuite, SharedSpectra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_preset(args.preset)
    suite = LossSuite(config)
    d = config.data
    g = torch.Generator().manual_seed(0)
    samples = int(d.segment_seconds * config.model.sample_rate)
    target = 0.1 * torch.randn(d.batch_size, 1, samples, generator=g)
    noisy = target + 0.05 * torch.randn(d.batch_size, 1, samples, generator=g)

    def step(share: bool) -> None:
        fake = noisy.clone().requires_grad_()
        spectra = SharedSpectra(fake, target) if share else None
        loss = sum(m(fake, target, spectra)[0] for m in suite.mel_losses)
        (loss + sum(suite.mrstft(fake, target, spectra))).backward()

    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(3):
        step(False), step(True)
    for _ in range(args.repeats):
        for share in (False, True):
            start = time.process_time()
            step(share)
            times[share].append(time.process_time() - start)
    before, after = (statistics.median(times[k]) for k in (False, True))
    print(f"{args.preset}, {d.batch_size} x {d.segment_seconds:g} s, {args.threads} thread(s): mel + "
          f"MR-STFT forward + backward, CPU ms per step: own STFTs {before * 1e3:.1f}, "
          f"shared {after * 1e3:.1f}, shared/own {after / before:.3f}")


if __name__ == "__main__":
    main()
