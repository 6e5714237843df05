"""Undoing what a non-finite step changed outside the optimizer.

A training forward pass changes model buffers in place: the quantizer's EMA codebooks, counts and
sums, its k-means flag, its ring of recent latents and its last-batch usage. If the step then turns
out non-finite, those changes must go too, so that a skipped step changes nothing at all.

:class:`BufferRollback` keeps a copy of exactly those buffers, written into storage allocated once
(no allocation per step, one fused copy), and nothing of the parameters (the optimizer is simply not
stepped). Which buffers to keep starts as the quantizer's and is checked after every step by the
tensors' version counters: a buffer elsewhere that a step changed in place joins the kept set, so
the copy stays exact if a future module keeps state of its own.
"""

from __future__ import annotations

import torch
from torch import nn


class BufferRollback:
    """``save()`` before a step, then ``restore()`` if it was non-finite or ``check()`` if not."""

    def __init__(self, model: nn.Module, kept: nn.Module | None = None):
        self._buffers = dict(model.named_buffers())
        kept = kept if kept is not None else getattr(model, "quantizer", model)
        kept_ids = {id(b) for b in kept.buffers()}
        self._kept = [n for n, b in self._buffers.items() if id(b) in kept_ids]
        self._copies: list[torch.Tensor] = []
        self._versions: dict[str, int] = {}

    @property
    def kept_names(self) -> list[str]:
        """The buffers copied before each step."""
        return list(self._kept)

    def kept_bytes(self) -> int:
        return sum(self._buffers[n].numel() * self._buffers[n].element_size() for n in self._kept)

    def save(self) -> None:
        """Copy the kept buffers into the saved storage (allocated on the first call)."""
        live = [self._buffers[n] for n in self._kept]
        if len(self._copies) != len(live):
            self._copies = [b.detach().clone() for b in live]
        elif live:
            with torch.no_grad():
                torch._foreach_copy_(self._copies, live)
        self._versions = {n: b._version for n, b in self._buffers.items()}

    def restore(self) -> None:
        """Put the kept buffers back as they were at :meth:`save`."""
        with torch.no_grad():
            for name, copy in zip(self._kept, self._copies):
                self._buffers[name].copy_(copy)

    def check(self) -> None:
        """After a good step: keep from now on any other buffer the step changed in place."""
        changed = [n for n, b in self._buffers.items()
                   if n not in self._kept and b._version != self._versions.get(n)]
        if changed:
            self._kept.extend(changed)
            self._copies = []  # reallocated at the next save
