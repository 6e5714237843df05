"""The window's panels: losses, spectrograms, weights, codebooks, audition, runs, compare, diagnosis.

Each panel is a QWidget built as ``Panel(store, worker, parent=None)`` (the audition panel also
takes the A/B player) that reads the :class:`~vqstudio.app.store.RunStore` when the window's redraw
timer calls ``refresh()``, and sends the user's changes to the training worker. :data:`PANELS`
names them for the window, which imports each module lazily.
"""

from __future__ import annotations

from typing import NamedTuple


class PanelSpec(NamedTuple):
    key: str  # the dock's object name (saved window state refers to it)
    title: str
    module: str  # under vqstudio.app.panels
    cls: str


PANELS = (
    PanelSpec("losses", "Losses", "losses", "LossPanel"),
    PanelSpec("spectrograms", "Spectrograms", "spectrograms", "SpectrogramPanel"),
    PanelSpec("weights", "Weights", "weights", "WeightsPanel"),
    PanelSpec("codebooks", "Codebooks", "codebooks", "CodebookPanel"),
    PanelSpec("audition", "Audition", "audition", "AuditionPanel"),
    PanelSpec("runs", "Runs", "runs", "RunsPanel"),
    PanelSpec("compare", "Compare", "compare_table", "ComparePanel"),
    PanelSpec("diagnosis", "Diagnosis", "diagnosis", "DiagnosisPanel"),
)
