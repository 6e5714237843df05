"""Copies of a model's weights taken at step boundaries, for another thread to run inference on
while training goes on.

The trainer stays the only writer of its model. :class:`WeightSnapshots` holds two copies of the
model (made on the first :meth:`~WeightSnapshots.publish`, so a run nobody auditions pays nothing);
the training thread copies its parameters and buffers into one of them between two steps, and a
reader (:meth:`~WeightSnapshots.hold`) runs the other. The writer never waits for a reader: it only
ever writes the copy the reader does not hold, under a lock held for a few assignments, never for
the copy itself. A reader asking for the newest copy while it is being written waits for that one
copy (milliseconds). Each copy carries the key it was published under (the step), so what a
reader computes is exactly the model's output at a stated step.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any

import torch
from torch import nn


def _tensors(model: nn.Module) -> list[torch.Tensor]:
    """Every parameter and buffer, in a fixed order (the same for a deep copy)."""
    return [t.detach() for t in model.parameters()] + list(model.buffers())


class WeightSnapshots:
    """Two snapshot copies of one model; ``publish`` from the training thread, ``hold`` from one
    reader thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._copies: list[nn.Module] = []
        self._keys: list[Any] = [None, None]
        self._latest: int | None = None  # index of the newest complete copy
        self._held: int | None = None  # index the reader runs
        self._writing: int | None = None
        self.copy_seconds = 0.0  # the CPU time of the last publish's copy
        self.published_at = 0.0  # time.monotonic() of the last publish
        self.wanted = False  # a reader asked: publishing is worth its copy from now on
        self._closed = False

    @property
    def latest_key(self) -> Any:
        with self._cond:
            return None if self._latest is None else self._keys[self._latest]

    def publish(self, model: nn.Module, key: Any) -> bool:
        """Copy ``model``'s parameters and buffers into the copy no reader holds, as ``key``
        (the step). Training thread only, between steps; returns whether it copied (not when the
        newest copy already is ``key``)."""
        with self._cond:
            if self._latest is not None and self._keys[self._latest] == key:
                return False
        if not self._copies:
            self._copies = [_detached_copy(model), _detached_copy(model)]
        start = time.thread_time()  # the copy's own cost: on a busy machine wall time counts others
        with self._cond:
            if self._held is not None:
                target = 1 - self._held
            else:
                target = 0 if self._latest is None else 1 - self._latest
            self._writing, self._keys[target] = target, None
            if self._latest == target:
                self._latest = None
        with torch.no_grad():
            destination, source = _tensors(self._copies[target]), _tensors(model)
            torch._foreach_copy_(destination, source)
        with self._cond:
            self._keys[target], self._latest, self._writing = key, target, None
            self._cond.notify_all()
        self.copy_seconds = time.thread_time() - start
        self.published_at = time.monotonic()
        return True

    def hold(self, newest: bool = True,
             timeout: float | None = None) -> tuple[nn.Module, Any] | None:
        """The copy to run and its key. ``newest``: the newest published one (waiting up to
        ``timeout`` seconds for a first publish, or for the one being written); otherwise the
        copy held last time, if any. None when nothing was published in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if not newest and self._held is not None:
                return self._copies[self._held], self._keys[self._held]
            while self._latest is None:
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            self._held = self._latest
            return self._copies[self._held], self._keys[self._held]


    def close(self) -> None:
        """No more publishing: a reader waiting for a first copy gets None now."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


def _detached_copy(model: nn.Module) -> nn.Module:
    """A deep copy in eval mode that records no gradients."""
    twin = copy.deepcopy(model)
    for parameter in twin.parameters():
        parameter.grad = None
        parameter.requires_grad_(False)
    return twin.eval()
