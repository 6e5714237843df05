"""Python's cyclic garbage collector runs on the GUI thread only.

A Qt object held in a reference cycle is destroyed by whichever thread the collector happens to
run on. On the training thread (or any other worker) its ``~QObject`` takes Qt's locks there while
the GUI thread may be destroying a neighbour of it, and shiboken's destructors hop between the GIL
and those locks: the whole app deadlocks. Seen for real in ``tests/test_window.py``: the training
thread's deepcopy of the model started a collection that reached the New run dialog's actions,
while the GUI thread was deleting the dialog itself; both threads waited for ever (py-spy dump).

pyqtgraph's ``GarbageCollector`` is the field's answer to exactly this: it turns automatic
collection off and collects, with the interpreter's own thresholds, from a timer on the GUI thread.
One is started per process, the first time a window is made.
"""

from __future__ import annotations

import gc
import threading

COLLECT_EVERY_S = 0.5  # cycles live at most this long (plus a busy GUI thread's delay)

_collector = None


def collect_on_gui_thread():
    """Start (once) collecting cyclic garbage only from the GUI thread; call it on that thread."""
    global _collector
    if _collector is None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("collect_on_gui_thread() must be called on the GUI thread")
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=COLLECT_EVERY_S)
    gc.disable()  # again: a library may have turned it back on
    return _collector


def sweep() -> None:
    """Collect now what the thresholds ask for, as the timer would (GUI thread only; tests)."""
    if _collector is not None and threading.current_thread() is threading.main_thread():
        _collector.check()
