"""The window's notice bar: a long notice takes the window's width, not a narrow column."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMainWindow

from vqstudio.app.notices import NoticeBar

LONG = ('Forked /tmp/runs/base at step 23 (step-00000023.pt) into /tmp/runs/base-fork: '
        'loss.mel_norm "tanh" -> "log" (live); loss.weights.mrstft 0.0 -> 1.0 (live); '
        'model and optimizer state carried over.')


def test_a_long_notice_spans_the_window_and_rewraps_when_it_narrows(qtbot):
    window = QMainWindow()
    window.setCentralWidget(QLabel("panels"))
    bar = NoticeBar(window)
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    qtbot.addWidget(window)
    window.resize(1500, 900)
    window.show()
    bar.notify(LONG)
    line = bar.label.fontMetrics().lineSpacing()
    # Before the fix the label was laid out at its wrapping hint: ~190 px wide, 5 lines tall.
    qtbot.waitUntil(lambda: bar.label.width() > 1000 and bar.label.height() < 2 * line)
    window.resize(600, 900)
    # Wrapped onto more lines, all of it still shown.
    qtbot.waitUntil(lambda: 300 < bar.label.width() < 600 and bar.label.height() >= 2 * line)
