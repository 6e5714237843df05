"""The inference path's CPU shortcuts switched off and on, interleaved in one process: what each
one (or all) saves on ``reconstruct`` of a 10 s clip, in the thread's CPU time.

    python benchmarks/inference_ab.py [--preset tiny-cpu] [--threads 1] [--rounds 8] [--piece all]

Pieces (each is used by ``reconstruct`` under ``torch.inference_mode`` on the CPU):

- ``elu``: the encoder's ELU as ``encoder.elu_inference`` (at one thread) instead of ``F.elu``;
- ``fused_add``: a residual unit's 1x1 convolution adding into its input in oneDNN
  (``encoder.FUSED_ADD``) instead of a convolution and ``add_``;
- ``stem``: the one-channel stem convolution as a matrix product of sample windows instead of
  oneDNN's convolution;
- ``istft``: the ISTFT's overlap-add as shifted block adds instead of ``F.fold``;
- ``all``: every one of them.

Off means exactly the code path before the piece (the same functions, monkeypatched here, not a
copy). Each round runs off then on, after one warm-up round; the medians, their ratio and the
largest difference of the outputs are printed. With ``--threads`` above 1 the CPU time is the
process's divided by the threads (spinning OpenMP threads count). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vqstudio.audio import spectral  # noqa: E402
from vqstudio.config import load_preset  # noqa: E402
from vqstudio.model import Codec  # noqa: E402
from vqstudio.model import encoder  # noqa: E402
from vqstudio.model.inference import reconstruct  # noqa: E402

PIECES = ("elu", "fused_add", "stem", "istft")
_ON = {"elu": encoder.elu_inference, "fused_add": encoder.FUSED_ADD,
       "stem": encoder._single_channel_conv, "istft": spectral.StftParams._istft_same}


def _plain_elu(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    return F.elu(x, inplace=inplace)


def _plain_stem(conv, x: torch.Tensor, padding: int) -> torch.Tensor:
    weight = conv.weight.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    return F.conv2d(x, weight, conv.bias, padding=(0, padding))


def _fold_istft(self, spec, window, length):
    with torch.enable_grad():  # grad mode on: the F.fold branch (nothing here requires grad)
        return _ON["istft"](self, spec, window, length)


_OFF = {"elu": _plain_elu, "fused_add": False, "stem": _plain_stem, "istft": _fold_istft}


def switch(pieces: tuple[str, ...], on: bool) -> None:
    values = _ON if on else _OFF
    for piece in pieces:
        if piece == "elu":
            encoder.elu_inference = values[piece]
        elif piece == "fused_add":
            encoder.FUSED_ADD = values[piece]
        elif piece == "stem":
            encoder._single_channel_conv = values[piece]
        else:
            spectral.StftParams._istft_same = values[piece]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--piece", choices=("all", *PIECES), default="all")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pieces = PIECES if args.piece == "all" else (args.piece,)
    torch.manual_seed(0)
    model = Codec(load_preset(args.preset).model)
    rate = model.sample_rate
    t = torch.arange(10 * rate) / rate
    g = torch.Generator().manual_seed(0)
    wave = (0.2 * sum(torch.sin(2 * torch.pi * 220.0 * h * t) / h for h in range(1, 6))
            + 0.01 * torch.randn(t.shape, generator=g)).numpy().astype(np.float32)
    clock = time.thread_time if args.threads == 1 else (lambda: time.process_time() / args.threads)
    times: dict[bool, list[float]] = {False: [], True: []}
    outputs: dict[bool, np.ndarray] = {}
    for round_ in range(args.rounds + 1):
        for on in (False, True):
            switch(pieces, on)
            start = clock()
            outputs[on] = reconstruct(model, wave)
            if round_:
                times[on].append(clock() - start)
    switch(pieces, True)
    off, on = (statistics.median(times[k]) for k in (False, True))
    print(f"{args.preset}, reconstruct 10 s, {args.threads} thread(s), {'+'.join(pieces)}: "
          f"off {off * 1e3:.1f} ms ({10 / off:.1f}x real time), on {on * 1e3:.1f} ms "
          f"({10 / on:.1f}x), on/off {on / off:.3f} (medians of {args.rounds}); "
          f"max |difference| {np.abs(outputs[True] - outputs[False]).max():.1e}")


if __name__ == "__main__":
    main()
