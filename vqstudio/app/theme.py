"""The dark theme: a Qt palette for the widgets and the colours every plot uses.

Dark grey rather than black, with muted text and one warm accent, so an hour of looking at
spectrograms between listening passes does not tire the eyes. Panels take their colours from here
(``CURVE_COLORS``, ``ORIGINAL_COLOR`` ...) so that one name has one colour everywhere.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

BACKGROUND = "#1e1f22"  # window and plot background
SURFACE = "#2a2c30"  # inputs, docks' title bars, buttons
SURFACE_RAISED = "#34363b"
BORDER = "#3d4046"
TEXT = "#d7d9dd"
TEXT_DIM = "#8b9099"
ACCENT = "#e0a458"  # warm amber: selection, the running indicator, focus
WARNING = "#e5c07b"
ERROR = "#e06c75"
OK = "#98c379"

# Original and reconstruction are shown side by side everywhere: blue-ish and amber.
ORIGINAL_COLOR = "#61afef"
RECONSTRUCTION_COLOR = "#e0a458"
RESIDUAL_COLOR = "#c678dd"

# One colour per loss term, in term order; chosen to stay apart on a dark background.
CURVE_COLORS = [
    "#61afef",  # blue
    "#e0a458",  # amber
    "#98c379",  # green
    "#c678dd",  # violet
    "#56b6c2",  # cyan
    "#e06c75",  # red
    "#d19a66",  # orange
    "#a9b1d6",  # lavender grey
    "#b5cea8",  # pale green
    "#f0c674",  # yellow
]
TOTAL_COLOR = "#eeeeee"

# Spectrograms: pyqtgraph colormap name (perceptually uniform, dark at the bottom).
SPECTROGRAM_COLORMAP = "inferno"


def curve_color(index: int) -> str:
    """The colour of the ``index``-th curve (cycles)."""
    return CURVE_COLORS[index % len(CURVE_COLORS)]


def palette() -> QPalette:
    """The dark widget palette."""
    p = QPalette()
    roles = {
        QPalette.ColorRole.Window: BACKGROUND,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: "#17181a",
        QPalette.ColorRole.AlternateBase: SURFACE,
        QPalette.ColorRole.ToolTipBase: SURFACE_RAISED,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.PlaceholderText: TEXT_DIM,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: SURFACE,
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.BrightText: "#ffffff",
        QPalette.ColorRole.Highlight: ACCENT,
        QPalette.ColorRole.HighlightedText: "#111111",
        QPalette.ColorRole.Link: ORIGINAL_COLOR,
        QPalette.ColorRole.Light: SURFACE_RAISED,
        QPalette.ColorRole.Midlight: SURFACE_RAISED,
        QPalette.ColorRole.Mid: BORDER,
        QPalette.ColorRole.Dark: "#141517",
        QPalette.ColorRole.Shadow: "#000000",
    }
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#5c6066"))
    return p


STYLE_SHEET = f"""
QMainWindow::separator {{ background: {BORDER}; width: 3px; height: 3px; }}
QDockWidget {{ color: {TEXT}; titlebar-close-icon: none; }}
QDockWidget::title {{ background: {SURFACE}; padding: 4px 8px; border-bottom: 1px solid {BORDER}; }}
QToolBar {{ background: {SURFACE}; border: none; border-bottom: 1px solid {BORDER}; spacing: 4px; padding: 2px; }}
QToolButton {{ padding: 4px 8px; border-radius: 3px; }}
QToolButton:hover {{ background: {SURFACE_RAISED}; }}
QToolButton:checked {{ background: {SURFACE_RAISED}; color: {ACCENT}; }}
QStatusBar {{ background: {SURFACE}; border-top: 1px solid {BORDER}; color: {TEXT_DIM}; }}
QStatusBar QLabel {{ color: {TEXT}; padding: 0 6px; }}
QToolTip {{ background: {SURFACE_RAISED}; color: {TEXT}; border: 1px solid {BORDER}; }}
QLabel#notice {{ color: {WARNING}; padding: 2px 8px; }}
QLabel#notice[severity="error"] {{ color: {ERROR}; }}
QLabel#placeholder {{ color: {TEXT_DIM}; }}
"""


def apply_theme(app: QApplication) -> None:
    """Fusion style, the dark palette and pyqtgraph's defaults, for the whole application."""
    import pyqtgraph as pg

    app.setStyle("Fusion")
    app.setPalette(palette())
    app.setStyleSheet(STYLE_SHEET)
    pg.setConfigOptions(background=BACKGROUND, foreground=TEXT_DIM, antialias=False)
