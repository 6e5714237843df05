"""The controls of one loss weight: a tick box (unticked = weight 0), a log-scale slider
(1e-3 .. 1e3), a number box that reads 0, 2.5 or 1e-4, the term's gradient share and a status
label. :class:`NumberBox` is also the panel's learning-rate box. The Weights panel
(:mod:`vqstudio.app.panels.weights`) decides what the controls show and sends the changes.
"""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QValidator
from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QLabel, QProgressBar, QSlider, QWidget

from vqstudio.app import theme
from vqstudio.app.panels.losses import format_number

SLIDER_DECADES = (-3, 3)  # 1e-3 .. 1e3
SLIDER_STEPS_PER_DECADE = 100


def weight_to_slider(weight: float) -> int:
    low, high = SLIDER_DECADES
    if weight <= 0:
        return 0
    position = (math.log10(weight) - low) * SLIDER_STEPS_PER_DECADE
    return int(round(min(max(position, 0), (high - low) * SLIDER_STEPS_PER_DECADE)))


def slider_to_weight(position: int) -> float:
    """Slider position -> weight, rounded to 3 significant digits (so 1.0 is exactly 1)."""
    value = 10.0 ** (SLIDER_DECADES[0] + position / SLIDER_STEPS_PER_DECADE)
    return float(f"{value:.3g}")


def _rgba(colour: str, alpha: float) -> str:
    """A style-sheet colour with transparency (style sheets read #AARRGGBB, not #RRGGBBAA)."""
    c = QColor(colour)
    return f"rgba({c.red()}, {c.green()}, {c.blue()}, {int(alpha * 255)})"


class NumberBox(QDoubleSpinBox):
    """A number box for weights and rates: types 0, 2.5, 1e-4; arrows step by a tenth of a
    decade (x1.26) rather than by a fixed amount."""

    def __init__(self, minimum: float = 0.0, maximum: float = 1e6, parent: QWidget | None = None):
        super().__init__(parent)
        self.setDecimals(30)  # the box's own rounding; the text shows 4 significant digits
        self.setRange(minimum, maximum)
        self.setKeyboardTracking(False)  # valueChanged on Enter / focus out / arrows only
        self.setAccelerated(True)
        self.setMinimumWidth(84)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt's name)
        return format_number(value) if value else "0"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        try:
            value = float(text)
        except ValueError:
            # Half-typed numbers such as "1e", "-", "." or "" may still become valid.
            partial = text.strip().lower()
            ok = all(c in "0123456789.e+-" for c in partial)
            return (QValidator.State.Intermediate if ok else QValidator.State.Invalid), text, pos
        if self.minimum() <= value <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:  # noqa: N802
        value = self.value()
        if value <= 0:
            value = max(self.minimum(), 10.0 ** SLIDER_DECADES[0]) if steps > 0 else 0.0
        else:
            value = float(f"{value * 10.0 ** (steps / 10.0):.3g}")
            if value < 10.0 ** SLIDER_DECADES[0] and steps < 0 and self.minimum() <= 0:
                value = 0.0
        self.setValue(min(max(value, self.minimum()), self.maximum()))


class TermRow:
    """One loss term's controls and what the panel knows about its weight."""

    def __init__(self, name: str, colour: str, weight: float):
        self.name = name
        self.desired = weight  # what the user asked for (or, when idle, what the trainer has)
        self.last_on = weight if weight > 0 else 1.0  # restored when the tick box goes back on
        self.pending = False  # asked for, not confirmed yet
        self.unsent = False  # asked for, still waiting in the coalescer
        self.enabled = QCheckBox(name)
        self.enabled.setStyleSheet(f"QCheckBox {{ color: {colour}; }}")
        self.enabled.setToolTip(f"untick to set the weight of {name} to 0")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        low, high = SLIDER_DECADES
        self.slider.setRange(0, (high - low) * SLIDER_STEPS_PER_DECADE)
        self.slider.setMinimumWidth(80)
        self.slider.setToolTip(f"weight of {name}, logarithmic: 0.001 .. 1000")
        self.box = NumberBox(0.0, 1e6)
        self.box.setToolTip(f"weight of {name}: 0, 2.5, 1e-4 ...")
        self.share = QProgressBar()
        self.share.setRange(0, 1000)
        self.share.setTextVisible(True)
        self.share.setFixedWidth(72)
        self.share.setStyleSheet(
            f"QProgressBar {{ border: 1px solid {theme.BORDER}; border-radius: 2px;"
            f" background: {theme.SURFACE}; color: {theme.TEXT}; text-align: center; }}"
            f" QProgressBar::chunk {{ background: {_rgba(colour, 0.45)}; }}"
        )
        self.share.setToolTip(f"share of the gradient at the decoder output that {name} contributes")
        self.status = QLabel("")
        self.status.setMinimumWidth(60)
        self.show(weight)

    def show(self, weight: float) -> None:
        """Put ``weight`` into the controls without emitting anything."""
        for widget in (self.enabled, self.slider, self.box):
            widget.blockSignals(True)
        self.enabled.setChecked(weight > 0)
        self.slider.setEnabled(weight > 0)
        if weight > 0:
            self.slider.setValue(weight_to_slider(weight))
        self.box.setValue(weight)
        for widget in (self.enabled, self.slider, self.box):
            widget.blockSignals(False)

    def set_status(self, text: str, colour: str) -> None:
        self.status.setText(text)
        self.status.setStyleSheet(f"color: {colour};")

    def set_share(self, share: float | None) -> None:
        if share is None or not math.isfinite(share):
            self.share.setValue(0)
            self.share.setFormat("—")
        else:
            self.share.setValue(int(round(min(max(share, 0.0), 1.0) * 1000)))
            self.share.setFormat(f"{share * 100:.1f} %")
