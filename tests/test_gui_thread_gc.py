"""Cyclic garbage made on any thread is collected on the GUI thread once a window exists
(vqstudio/app/gui_thread_gc.py): a Qt object destroyed by the collector on the training thread
deadlocked the app against the GUI thread deleting a dialog."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject, QSettings

from vqstudio.app.window import MainWindow


class Marker:
    """Garbage in a cycle (with a Qt object in it, like a dialog's wrapper) that says which thread
    collected it."""

    collected_on: list[str] = []

    def __init__(self):
        self.me = self
        self.qt = QObject()

    def __del__(self):
        Marker.collected_on.append(threading.current_thread().name)


def test_cycles_made_on_a_worker_thread_are_collected_by_the_gui_thread(qtbot, tmp_path):
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert not gc.isenabled()
    Marker.collected_on.clear()

    def work():
        Marker()  # unreachable at once, kept alive by its cycle
        for _ in range(200_000):  # far past the collector's thresholds
            a: list = []
            a.append(a)

    worker = threading.Thread(target=work, name="worker")
    worker.start()
    worker.join()
    assert Marker.collected_on == []  # nothing collected off the GUI thread
    qtbot.waitUntil(lambda: bool(Marker.collected_on), timeout=5000)  # the GUI thread's timer
    assert Marker.collected_on == [threading.main_thread().name]
    win.close()
