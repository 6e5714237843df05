"""Keep the memory a training step frees for the next step, instead of handing it back to the OS.

A CPU step allocates and frees the same few hundred MB every time (activations, spectra,
gradients). glibc's malloc serves blocks above its mmap threshold (dynamic, at most 32 MB) with
fresh ``mmap`` pages and returns the top of its heaps to the kernel once more than the trim
threshold is free, so each step pays ~27 000-39 000 page faults, each zeroing a 4 KiB page
(measured at one thread: seed-baseline 32 904 and seed-fixed 38 873 minor faults per step, ~7 % of
the step's thread CPU time). With these three settings the pages stay mapped and are reused: 0-1
faults per step, and the peak resident memory does not grow (it is the step's working set either
way; it only no longer shrinks between steps).

- ``M_MMAP_THRESHOLD`` 1 GiB: blocks are carved from the heap, not mapped one by one;
- ``M_TRIM_THRESHOLD`` 2 GiB: free memory at the top of the heap is kept;
- ``M_ARENA_MAX`` 1: every thread allocates from the main heap. A training thread otherwise gets
  its own arena, made of 64 MB heaps that cannot hold a step's larger blocks, and still faults
  ~3 000-22 000 times a step; takes effect for threads that have not allocated yet, so call this
  before starting any (``vqstudio.cli.main`` does; a :class:`~vqstudio.train.trainer.Trainer`
  calls it again, which is harmless).

No other allocator (jemalloc, tcmalloc) is assumed installed; on a C library without ``mallopt``
(macOS, musl, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
SETTINGS = ((M_MMAP_THRESHOLD, 1 << 30), (M_TRIM_THRESHOLD, (1 << 31) - 1), (M_ARENA_MAX, 1))

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Apply :data:`SETTINGS` once per process; True where glibc accepted all three."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = all(mallopt(option, value) == 1 for option, value in SETTINGS)
    return _done
