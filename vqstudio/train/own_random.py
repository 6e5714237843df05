"""A trainer's own random numbers: its steps draw from a generator state nobody else moves.

The model's random draws (k-means initialisation, dead-code replacement, quantizer dropout) use
torch's global generator. With two trainers in one process, stepped in turn (the variants of
``benchmarks/quantizers.py`` trained interleaved, a fork and its control), each one's draws
depended on the other's: the same preset and seed gave another run next to another row
(seed-fixed's floor in the pauses -77.2 dBFS beside seed-baseline alone, -83.2 in the seven-row
table). Each trainer now keeps the global state it had after building its model and swaps it in
for its own steps only, so a run is the same whatever else the process does; a trainer alone in
its process draws exactly what it drew before.
"""

from __future__ import annotations

import contextlib

import torch


class OwnRandom:
    """``with own:`` runs the block on this trainer's generator state (CPU, and the CUDA device's
    when it trains there) and puts the process's back after it; nested blocks (a checkpoint saved
    or loaded inside a step) keep the live state. Taken at construction."""

    def __init__(self, device: torch.device):
        self._cuda = device if device.type == "cuda" else None
        self._state = self._read()
        self._outer = None
        self._depth = 0

    def _read(self):
        cuda = torch.cuda.get_rng_state(self._cuda) if self._cuda is not None else None
        return torch.get_rng_state(), cuda

    def _write(self, state) -> None:
        cpu, cuda = state
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state(cuda, self._cuda)

    def __enter__(self) -> "OwnRandom":
        if self._depth == 0:
            self._outer = self._read()
            self._write(self._state)
        self._depth += 1
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._state = self._read()
            self._write(self._outer)
            self._outer = None


def own_random_of(trainer):
    """The block's random state is ``trainer``'s: its :class:`OwnRandom` once it has one (a
    checkpoint saved or loaded between steps), the process's while it is being built."""
    own = getattr(trainer, "_random", None)
    return own if own is not None else contextlib.nullcontext()
