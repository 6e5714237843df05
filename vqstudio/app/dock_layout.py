"""The panels' docks and their arrangement: the default layout (what is trained on the left,
what it sounds like on the right), saving and restoring it in QSettings, and Reset layout."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QWidget

from vqstudio.app.panels import PANELS, PanelSpec

SETTINGS_VERSION = 5  # bump when the dock layout changes: older saved states are then ignored
DEFAULT_SIZE = (1560, 960)


def build_docks(window: QMainWindow, make_panel: Callable[[PanelSpec], QWidget]
                ) -> tuple[dict[str, QWidget], dict[str, QDockWidget]]:
    """One dock per panel, movable, floatable and closable (View brings a closed one back),
    in the default arrangement. Returns (panels, docks) by panel key."""
    panels, docks = {}, {}
    for spec in PANELS:
        dock = QDockWidget(spec.title, window)
        dock.setObjectName(f"dock-{spec.key}")  # saved window state refers to it
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        panels[spec.key] = make_panel(spec)
        dock.setWidget(panels[spec.key])
        docks[spec.key] = dock
    arrange_default(window, docks)
    return panels, docks


def arrange_default(window: QMainWindow, d: dict[str, QDockWidget]) -> None:
    # Two columns, so that the window fits a laptop screen: what is trained (curves over the
    # weights that shape them) on the left, what it sounds like (spectrograms, codebooks,
    # the A/B player) on the right.
    area = Qt.DockWidgetArea
    window.addDockWidget(area.LeftDockWidgetArea, d["losses"])
    window.addDockWidget(area.RightDockWidgetArea, d["spectrograms"])
    window.splitDockWidget(d["losses"], d["weights"], Qt.Orientation.Vertical)
    window.splitDockWidget(d["spectrograms"], d["codebooks"], Qt.Orientation.Vertical)
    window.splitDockWidget(d["codebooks"], d["audition"], Qt.Orientation.Vertical)
    # Below both columns, low: the runs compared (left) and their comparison table.
    window.addDockWidget(area.BottomDockWidgetArea, d["runs"])
    window.splitDockWidget(d["runs"], d["compare"], Qt.Orientation.Horizontal)
    window.splitDockWidget(d["compare"], d["diagnosis"], Qt.Orientation.Horizontal)  # the findings


def default_proportions(window: QMainWindow, d: dict[str, QDockWidget]) -> None:
    """Dock sizes of the default layout (only take once the window has its size)."""
    width, height = window.width(), window.height()
    # The findings need room to be read: 38 % of the bottom row (it had what Compare left, and a
    # finding's text scrolled after two lines), and a quarter of the height where the panels
    # above can give it (at 1600 x 1000 their minimum heights keep the row at ~17 %).
    window.resizeDocks([d["runs"], d["compare"], d["diagnosis"]],
                       [int(width * 0.22), int(width * 0.40), int(width * 0.38)], Qt.Orientation.Horizontal)
    window.resizeDocks([d["losses"], d["spectrograms"]], [width // 2, width // 2], Qt.Orientation.Horizontal)
    window.resizeDocks([d["losses"], d["weights"]], [int(height * 0.64), int(height * 0.36)],
                       Qt.Orientation.Vertical)
    window.resizeDocks([d["spectrograms"], d["codebooks"], d["audition"]],
                       [int(height * 0.37), int(height * 0.33), int(height * 0.30)], Qt.Orientation.Vertical)
    window.resizeDocks([d["runs"]], [int(height * 0.25)], Qt.Orientation.Vertical)  # last: the rows above yield


def reset_layout(window: QMainWindow, docks: dict[str, QDockWidget]) -> None:
    """Every panel back, docked where it starts, at the default sizes."""
    for dock in docks.values():
        dock.setFloating(False)
        window.removeDockWidget(dock)
    arrange_default(window, docks)
    for dock in docks.values():
        dock.setFloating(False)  # a floating dock stays floating when added again
        dock.show()
    default_proportions(window, docks)


def restore_layout(window: QMainWindow, settings: QSettings) -> bool:
    """The saved geometry and dock state; a size that fits the screen if none. Returns whether
    the default proportions are still to be applied (no usable saved state)."""
    geometry = settings.value("window/geometry")
    if geometry is not None:
        window.restoreGeometry(geometry)
    else:
        screen = window.screen().availableGeometry() if window.screen() else None
        width, height = DEFAULT_SIZE
        if screen is not None:
            width, height = min(width, int(screen.width() * 0.95)), min(height, int(screen.height() * 0.92))
        window.resize(width, height)
    state = settings.value("window/state")
    return state is None or not window.restoreState(state, SETTINGS_VERSION)


def save_layout(window: QMainWindow, settings: QSettings) -> None:
    settings.setValue("window/geometry", window.saveGeometry())
    settings.setValue("window/state", window.saveState(SETTINGS_VERSION))
    settings.sync()
