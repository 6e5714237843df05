"""The audition panel's widgets and their wiring: the clip and levels row, the waveform, the
transport and the extra sources (1, 2, D), the read-outs and the notices, laid out top to bottom.
``build_audition(panel)`` makes them as the panel's attributes and connects them to its methods."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout

from vqstudio.app.notices import notice_label, show_notice
from vqstudio.app.panels.audition_sources import ExtraSources
from vqstudio.app.panels.audition_transport import Transport
from vqstudio.app.panels.clip_chooser import ClipChooser
from vqstudio.app.panels.levels_box import LevelsBox
from vqstudio.app.panels.waveform import WaveformView


def build_audition(panel: Any) -> None:
    """Make the audition panel's widgets, lay them out in ``panel`` and connect them."""
    panel.clip_box = ClipChooser()
    panel.clip_box.activated.connect(panel._on_clip_chosen)

    panel.levels_box = LevelsBox()
    panel.levels_box.levels_chosen.connect(panel._on_levels)
    # Enter hands the keys back to the transport; leaving the box for elsewhere does not.
    panel.levels_box.editingFinished.connect(
        lambda: panel.setFocus() if panel.levels_box.hasFocus() else None
    )

    top = QHBoxLayout()
    for widget, stretch in ((QLabel("Clip"), 0), (panel.clip_box, 1), (QLabel("Levels"), 0),
                            (panel.levels_box, 0)):
        top.addWidget(widget, stretch)

    panel.waveform = WaveformView()
    panel.transport = Transport(panel.player, panel.waveform)
    panel.transport.loop_changed.connect(panel._on_loop_moved)
    panel.play_button = panel.transport.play_button
    panel.source_buttons = panel.transport.source_buttons
    panel.loop_box, panel.match_box = panel.transport.loop_box, panel.transport.match_box
    panel.play_button.clicked.connect(panel.toggle_playback)
    for name, button in panel.source_buttons.items():
        button.clicked.connect(lambda _=False, n=name: panel.select_source(n))
    panel.transport.selection_changed.connect(lambda _name: panel._redraw())
    panel.transport.gains_changed.connect(panel._update_levels_label)
    panel.extra = ExtraSources(panel.transport, panel.player, panel)
    panel.extra.source_ready.connect(lambda _name: panel._redraw())
    panel.extra.problem.connect(lambda text: show_notice(panel.notice, text, "error"))

    panel.status, panel.levels_label = QLabel(), QLabel()
    panel.status.setWordWrap(True)
    for label in (panel.status, panel.levels_label):
        label.setObjectName("placeholder")
    panel.levels_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    info_row = QHBoxLayout()
    info_row.addWidget(panel.status, 1)
    info_row.addWidget(panel.levels_label)

    panel.device_notice, panel.notice = notice_label(), notice_label()

    layout = QVBoxLayout(panel)
    layout.setContentsMargins(6, 6, 6, 6)
    layout.setSpacing(4)
    layout.addLayout(top)
    layout.addWidget(panel.waveform, 1)
    layout.addWidget(panel.transport)
    layout.addWidget(panel.extra)
    layout.addLayout(info_row)
    layout.addWidget(panel.device_notice)
    layout.addWidget(panel.notice)
