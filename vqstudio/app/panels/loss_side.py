"""The Losses panel's side column: the list of curves (a tick box each, the name in the curve's
colour), the smoothing slider, log y and what runs along x; and the list entries themselves."""

from __future__ import annotations

from typing import Callable, Iterable

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from vqstudio.app import theme
from vqstudio.app.panels.smoothed_curve import smoothing_from_slider
from vqstudio.app.panels.x_axis import X_MODES

COLOUR_ROLE = Qt.ItemDataRole.UserRole + 1
NAME_ROLE = Qt.ItemDataRole.UserRole


def build_side(panel) -> QWidget:
    """Make ``panel.term_list``, ``log_y``, ``smoothing_slider``, ``smoothing_label`` and
    ``x_choice``, wired to the panel's methods; returns the column holding them."""
    panel.term_list = QListWidget()
    panel.term_list.setToolTip("Tick a curve to show it")
    panel.term_list.itemChanged.connect(panel._item_toggled)
    panel.log_y = QCheckBox("log y")
    panel.log_y.setChecked(True)
    panel.log_y.toggled.connect(lambda on: panel.plot_item.setLogMode(False, on))
    panel.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
    panel.smoothing_slider.setRange(0, 1000)
    panel.smoothing_slider.setToolTip(
        "Exponential moving average of the shown curves (0 = raw, 0.999 = heavy); the data "
        "itself is kept raw"
    )
    panel.smoothing_label = QLabel("smoothing 0.000")
    panel._smoothing_proxy = pg.SignalProxy(
        panel.smoothing_slider.valueChanged, delay=0.05, rateLimit=15,
        slot=lambda args: panel.set_smoothing(smoothing_from_slider(args[0])),
    )
    panel.smoothing_slider.valueChanged.connect(
        lambda v: panel.smoothing_label.setText(f"smoothing {smoothing_from_slider(v):.3f}")
    )
    panel.x_choice = QComboBox()
    for mode, text in X_MODES.items():
        panel.x_choice.addItem(f"x: {text}", mode)
    panel.x_choice.setToolTip("Along x: the step, the seconds of audio trained on (batch x "
                              "segment per step), or the training time")
    panel.x_choice.currentIndexChanged.connect(lambda i: panel.set_x_mode(panel.x_choice.itemData(i)))

    side = QVBoxLayout()
    side.addWidget(QLabel("curves"))
    side.addWidget(panel.term_list, 1)
    side.addWidget(panel.smoothing_label)
    side.addWidget(panel.smoothing_slider)
    side.addWidget(panel.log_y)
    side.addWidget(panel.x_choice)
    side_widget = QWidget()
    side_widget.setLayout(side)
    side_widget.setFixedWidth(190)
    return side_widget


def new_entry(name: str, colour: str, ticked: bool) -> QListWidgetItem:
    entry = QListWidgetItem(name)
    entry.setData(NAME_ROLE, name)
    entry.setFlags(entry.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    entry.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
    entry.setData(COLOUR_ROLE, colour)
    return entry


def colour_entry(entry: QListWidgetItem, plain: bool = False) -> None:
    """A shown curve's name in its colour (``plain``: the text colour, when colour means the run),
    a hidden one's dimmed (the dark theme's unticked boxes are hard to see, the names are not)."""
    colour = QColor(theme.TEXT if plain else entry.data(COLOUR_ROLE))
    if entry.checkState() != Qt.CheckState.Checked:
        colour = QColor.fromRgbF(*(0.45 * c + 0.55 * b for c, b in zip(
            colour.getRgbF()[:3], QColor(theme.BACKGROUND).getRgbF()[:3])))
    entry.setForeground(colour)


def sync_entries(term_list: QListWidget, own: Iterable[str], extra: list[str],
                 ticked: Callable[[str], bool], plain: bool) -> None:
    """The list holds the names ``own`` (the current run's, listed already) and ``extra`` (only
    compared runs have them: added, or removed when gone); every tick set by ``ticked``."""
    own = set(own)
    term_list.blockSignals(True)
    listed = {term_list.item(i).data(NAME_ROLE) for i in range(term_list.count())}
    for name in extra:
        if name not in listed:
            term_list.addItem(new_entry(name, theme.TEXT, False))
    for i in reversed(range(term_list.count())):
        entry = term_list.item(i)
        name = entry.data(NAME_ROLE)
        if name not in own and name not in extra:
            term_list.takeItem(i)
            continue
        entry.setCheckState(Qt.CheckState.Checked if ticked(name) else Qt.CheckState.Unchecked)
        colour_entry(entry, plain)
    term_list.blockSignals(False)
