"""Batches prepared ahead of the step by background worker processes.

A :class:`BatchFeed` hands the trainer the batch of step ``s``. With ``workers=0`` it cuts it in
the calling thread; otherwise torch's DataLoader runs that many persistent worker *processes*
(their own interpreters, so neither the GUI nor the trainer shares a GIL with them) over a dataset
indexed by step, and keeps ``2 x workers`` batches in flight. Every batch is still
:meth:`SegmentSampler.batch(step) <vqstudio.audio.sampler.SegmentSampler.batch>`, a pure function
of ``(seed, step, rank)``: which process cut it changes nothing, so exact resume holds bit for bit.
Asking for a step other than the next one (a resume, a rollback) restarts the stream there.

Workers are started with ``forkserver`` (``spawn`` where that is missing), never ``fork``: the
GUI and the trainer run threads, and forking a threaded process can deadlock the child. They run
at a lower priority (nice 10) with one torch thread each, so on a small CPU they use what the
trainer and the GUI leave. ``-1`` workers means one per core beyond two (kept for the trainer and
the GUI): none on a 2-core machine, 8 at most; and none when no segment needs decoding (a prepared
dataset, or a corpus that fits the in-memory cache): cutting such a batch is a copy, ten to
twenty times cheaper than passing it between processes (benchmarks/data_speed.py).

Files that turn unreadable in a worker come back with the batch and are reported once each by
:meth:`BatchFeed.take_failures`; a user error in a worker (nothing readable left) is raised here
with its own message, not a worker traceback.
"""

from __future__ import annotations

import copy
import itertools
import multiprocessing
import os
import time

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from vqstudio.errors import UserError

MAX_AUTO_WORKERS = 8
KEPT_CORES = 2  # the training thread and the GUI


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_workers(requested: int, decodes_on_use: bool = True) -> int:
    """Worker processes for ``data.workers``: itself when >= 0; -1 follows the cores, and is 0
    when cutting a batch needs no decoding (a prepared dataset, or a corpus held in memory):
    then handing a batch over from another process costs more than cutting it here."""
    if requested >= 0:
        return int(requested)
    if not decodes_on_use:
        return 0
    return max(0, min(MAX_AUTO_WORKERS, usable_cores() - KEPT_CORES))


def _lower_priority(_worker_id: int) -> None:
    try:
        os.nice(10)
    except OSError:
        pass
    torch.set_num_threads(1)


def _worker_context():
    """forkserver with torch and the audio modules imported once in the server, so each worker
    is a cheap fork of it; spawn where there is no forkserver."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "vqstudio.audio.sampler", "vqstudio.audio.prepared"])
    return context


class _StepBatches(Dataset):
    """Item ``s`` is ``(s, batch of step s, files found unreadable, user error or None, CPU
    seconds the cutting took)``."""

    def __init__(self, sampler, batch_size: int, rank: int, world: int):
        self.sampler, self.batch_size, self.rank, self.world = sampler, batch_size, rank, world

    def __len__(self) -> int:
        return 1 << 62

    def __getitem__(self, step: int):
        cpu = time.process_time()
        try:
            batch = self.sampler.batch(step, self.batch_size, self.rank, self.world)
        except UserError as error:
            failed = (type(error), error.problem, error.fix)
            return step, None, self.sampler.take_failures(), failed, time.process_time() - cpu
        return step, batch, self.sampler.take_failures(), None, time.process_time() - cpu


class _StepsFrom(Sampler):
    """Steps ``start, start + 1, ...``; ``start`` is set before each new iterator."""

    def __init__(self) -> None:
        self.start = 0

    def __iter__(self):
        return itertools.count(self.start)


class BatchFeed:
    """The batch of every step, cut ahead of time by ``workers`` processes (0: cut on demand)."""

    def __init__(self, sampler, batch_size: int, *, rank: int = 0, world: int = 1,
                 workers: int = -1):
        self.sampler = sampler
        self.workers = resolve_workers(workers, getattr(sampler, "decodes_on_use", True))
        self._batches = _StepBatches(sampler, batch_size, rank, world)
        self._reported: set[str] = set()
        self._failures: list[tuple[str, str]] = []
        self._loader = self._iterator = None
        self._next = None
        self.cutting_seconds = 0.0  # CPU time spent cutting the batches delivered, all processes
        if self.workers:
            worker_sampler = copy.copy(sampler)
            worker_sampler.share_cache(self.workers)  # all workers together keep one budget
            self._steps = _StepsFrom()
            self._loader = DataLoader(
                _StepBatches(worker_sampler, batch_size, rank, world),
                batch_size=None, sampler=self._steps, num_workers=self.workers,
                persistent_workers=True, prefetch_factor=2, worker_init_fn=_lower_priority,
                multiprocessing_context=_worker_context(),
                # its own generator: drawing the workers' base seed from torch's global one
                # would shift the model's random stream (dropout, k-means) and break resume
                generator=torch.Generator().manual_seed(0),
            )

    def batch(self, step: int) -> torch.Tensor:
        """``[B, 1, T]`` float32: exactly ``sampler.batch(step, B, rank, world)``."""
        if self._loader is None:
            got, batch, failed, error, cpu = self._batches[step]
        else:
            if self._iterator is None or step != self._next:
                self._steps.start = step
                self._iterator = iter(self._loader)
            got, batch, failed, error, cpu = next(self._iterator)
            if got != step:
                raise RuntimeError(f"the batch feed delivered step {got} for step {step}")
            self._next = step + 1
        self.cutting_seconds += cpu
        for path, reason in failed:
            if path not in self._reported:
                self._reported.add(path)
                self._failures.append((path, reason))
        if error is not None:
            kind, problem, fix = error
            try:
                raised = kind(problem, fix)
            except TypeError:  # a kind with other arguments: the message is what matters
                raised = UserError(problem, fix)
            raise raised
        return batch

    def take_failures(self) -> list[tuple[str, str]]:
        """Files found unreadable since the last call, each reported once: ``(path, reason)``."""
        found, self._failures = self._failures, []
        return found

    def close(self) -> None:
        """End the worker processes (they also end with this process)."""
        iterator, self._iterator = self._iterator, None
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self._loader = None
