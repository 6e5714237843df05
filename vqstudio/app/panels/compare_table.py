"""The Compare panel: chosen runs and checkpoints measured on the same clips, one row each, one
column per figure of ``vqstudio compare`` (PESQ and STOI when their packages are installed), the
best of each column marked (bold, a star, tinted), and what the blind listening tests of each
checkpoint found (``listening.jsonl`` in its run folder).

The rows are the runs ticked in the Runs list, each at a checkpoint chosen in its row (latest,
best, or a step); "Add row" lists the selected run again, to compare two checkpoints of one run.
Measure runs :class:`~vqstudio.app.compare_runner.CompareRunner` (a child process per
checkpoint, with progress and Cancel); the figures stay until the rows change.

The checkpoints each chooser offers (and the listening results) come from a
:class:`~vqstudio.app.checkpoint_scan.CheckpointScan` off the GUI thread, asked when a run is
added or ticked, when a shown run's store gains a checkpoint event, and every few seconds (a run
trained elsewhere); a redraw does no file-system work.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vqstudio.app import theme
from vqstudio.app.checkpoint_scan import CheckpointScan, RunCheckpoints
from vqstudio.app.compare_runner import CompareRunner
from vqstudio.experiments.compare import _columns as figure_columns
from vqstudio.experiments.compare import _value as figure_value
from vqstudio.experiments.compare import best_rows

from vqstudio.train.checkpoint import checkpoint_name

FIXED = ["run", "checkpoint"]
LISTENING = "listening"
BEST_MARK = " ★"
DENOISE_STRENGTH = 0.5
SCAN_EVERY_MS = 4000  # a run trained elsewhere gains checkpoints no event announces


class ComparePanel(QWidget):
    """The comparison table of the runs ticked in the Runs list."""

    def __init__(self, store, worker=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.worker = store, worker
        self.runs = None
        self.rows: list[dict[str, Any]] = []  # {"run": Path, "choice": QComboBox, "entries": [..]}
        self._rows_dirty = True
        # What the disk holds, looked up off the GUI thread only when something can have changed
        # (a redraw never lists a folder: on a shared filesystem that can take long).
        self._found: dict[Path, RunCheckpoints] = {}
        self._scan_asked = True
        self._shown_found: dict[Path, RunCheckpoints] | None = None
        self._events_seen: dict[str, tuple[list, int]] = {}  # run key -> (its events list, read)
        self.scan = CheckpointScan(self)
        self.scan.scanned.connect(self._on_scanned)
        self.scan_timer = QTimer(self)
        self.scan_timer.setInterval(SCAN_EVERY_MS)
        self.scan_timer.timeout.connect(self._ask_scan)
        self.scan_timer.start()
        self.runner = CompareRunner(self)
        self.runner.progress.connect(self._on_progress)
        self.runner.measured.connect(self._on_measured)
        self.runner.failed.connect(self._on_failed)
        self.runner.finished.connect(self._on_finished)

        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("clips: a folder or manifest")
        self.data_edit.setToolTip("The clips every checkpoint is measured on: a folder of audio "
                                  "files or a manifest")
        # Never narrower than what it asks for (it was cut to "clips to mea…" beside the buttons).
        self.data_edit.setMinimumWidth(
            self.data_edit.fontMetrics().horizontalAdvance(self.data_edit.placeholderText()) + 16)
        browse = QPushButton("…")
        browse.setMaximumWidth(browse.fontMetrics().horizontalAdvance("…") + 24)
        browse.setToolTip("Choose the folder of clips every checkpoint is measured on")
        browse.clicked.connect(self._browse)
        self.denoised = QCheckBox("+ denoised")
        self.denoised.setToolTip("Also measure each checkpoint's reconstructions through the "
                                 f"spectral-gating denoiser (strength {DENOISE_STRENGTH})")
        self.add_row_button = QPushButton("Add row")
        self.add_row_button.setToolTip("List the selected run again, to compare two of its checkpoints")
        self.add_row_button.clicked.connect(self.add_row_for_selected)
        self.measure_button = QPushButton("Measure")
        self.measure_button.setToolTip("Measure every row's checkpoint on the same clips")
        self.measure_button.clicked.connect(self.measure)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(100)
        self.progress.setFormat("%v/%m")
        self.status = QLabel("Tick runs in the Runs panel, choose their checkpoints, press Measure")
        # One line, no wrap: a wrapped label's height would follow the dock's width.
        self.status.setMinimumWidth(1)
        self.table = QTableWidget(0, len(FIXED) + 1)
        self.table.setHorizontalHeaderLabels(FIXED + [LISTENING])
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(40)

        top = QHBoxLayout()
        top.addWidget(self.data_edit, 1)
        top.addWidget(browse)
        top.addWidget(self.denoised)
        top.addWidget(self.add_row_button)
        top.addWidget(self.measure_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.progress)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.status)

    # -- public ---------------------------------------------------------------------------------

    def set_runs(self, runs) -> None:
        self.runs = runs
        runs.changed.connect(self._mark_rows_dirty)
        self._rows_dirty = True

    def refresh(self) -> None:
        """Cheap: no file-system work here (see :mod:`~vqstudio.app.checkpoint_scan`)."""
        if self._new_checkpoint_events():
            self._scan_asked = True
        if self._scan_asked:
            self._scan_asked = False
            folders = self._folders()
            if folders:
                self.scan.scan(folders)
        if self._rows_dirty and not self.runner.running:
            self._rows_dirty = False
            self._sync_rows()
        if not self.data_edit.text() and self.store.info.get("data"):
            self.data_edit.setText(str(self.store.info["data"]))

    def refs(self) -> list[str]:
        """``RUN:CKPT`` of every row, as ``vqstudio compare`` takes them."""
        return [f"{row['run']}:{row['checkpoint']}" for row in self.rows]

    def measure(self) -> None:
        """Measure every row's checkpoint on the clips named above (off the GUI thread)."""
        if self.runner.running:
            return
        refs, data = self.refs(), self.data_edit.text().strip()
        if not refs:
            self.status.setText("Nothing to measure: tick runs that have checkpoints in the Runs panel")
            return
        if not data:
            self.status.setText("Choose the clips to measure on first (the … button)")
            return
        for row in self.rows:
            row["entries"], row["error"] = [], ""
        self._fill()
        self.measure_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.status.setText(f"measuring {len(refs)} checkpoint(s) on {data}…")
        self.runner.start(refs, data, denoise=DENOISE_STRENGTH if self.denoised.isChecked() else None)

    def cancel(self) -> None:
        if self.runner.running:
            self.runner.cancel()

    def add_row_for_selected(self) -> None:
        selected = sorted({i.row() for i in self.table.selectedIndexes()})
        source = self.rows[selected[0]]["run"] if selected else (self.rows[0]["run"] if self.rows else None)
        if source is not None:
            self.rows.append(self._new_row(source))
            self._fill()

    def entries(self) -> list[dict[str, Any]]:
        """Every measured entry, in row order (a row with a denoised variant gives two)."""
        return [entry for row in self.rows for entry in row.get("entries", [])]

    def best_cells(self) -> set[tuple[int, str]]:
        """(table row, column heading) of the cells marked best."""
        marked = set()
        for r in range(self.table.rowCount()):
            for c in range(len(FIXED), self.table.columnCount()):
                item = self.table.item(r, c)
                if item is not None and item.text().endswith(BEST_MARK):
                    marked.add((r, self.table.horizontalHeaderItem(c).text()))
        return marked

    # -- rows -----------------------------------------------------------------------------------

    def _mark_rows_dirty(self) -> None:
        self._rows_dirty = True
        self._scan_asked = True

    def _ask_scan(self) -> None:
        self._scan_asked = True

    def _folders(self) -> list[Path]:
        shown = self.runs.shown() if self.runs is not None else []
        return [Path(e.path) for e in shown if e.path is not None]

    def _new_checkpoint_events(self) -> bool:
        """Whether a shown run's store gained a checkpoint event since the last look (only the
        events added since are read)."""
        if self.runs is None:
            return False
        new = False
        for entry in self.runs.shown():
            events = entry.store.events
            seen_list, seen = self._events_seen.get(entry.key, (None, 0))
            start = seen if seen_list is events and seen <= len(events) else 0
            if len(events) > start:
                new |= any(e.get("kind") == "checkpoint" for e in events[start:])
            self._events_seen[entry.key] = (events, len(events))
        return new

    def _on_scanned(self, found: dict) -> None:
        if any(self._found.get(path) != checkpoints for path, checkpoints in found.items()):
            self._found.update(found)
            self._rows_dirty = True
            if not self.runner.running:  # else when the measurement ends
                self._rows_dirty = False
                self._sync_rows()

    def _sync_rows(self) -> None:
        """One row per ticked run that has checkpoints (rows the user added for a run stay while
        the run is ticked; figures stay with their rows); the choosers offer what the last scan
        found. The table is laid out again only if that changed what it shows."""
        shown = self.runs.shown() if self.runs is not None else []
        wanted = [Path(e.path) for e in shown if e.path is not None and self._checkpoints(e.path).selectors]
        before = [(row["run"], row["checkpoint"], tuple(row["choices"])) for row in self.rows]
        kept = [row for row in self.rows if row["run"] in wanted]
        for row in kept:
            row["choices"] = self._choices(row["run"])
            if row["checkpoint"] not in {value for _text, value in row["choices"]}:
                row["checkpoint"], row["entries"], row["error"] = "latest", [], ""
        for path in wanted:
            if not any(row["run"] == path for row in kept):
                kept.append(self._new_row(path))
        kept.sort(key=lambda row: wanted.index(row["run"]))
        self.rows = kept
        after = [(row["run"], row["checkpoint"], tuple(row["choices"])) for row in self.rows]
        found = {row["run"]: self._checkpoints(row["run"]) for row in self.rows}
        if after != before or found != self._shown_found:  # e.g. new listening results
            self._shown_found = found
            self._fill()

    def _checkpoints(self, run: Path) -> RunCheckpoints:
        return self._found.get(Path(run), RunCheckpoints())

    def _choices(self, run: Path) -> list[tuple[str, str]]:
        return [("latest", "latest")] + [(n if n == "best" else f"step {n}", n)
                                         for n in reversed(self._checkpoints(run).selectors)]

    def _new_row(self, run: Path) -> dict[str, Any]:
        return {"run": Path(run), "checkpoint": "latest", "choices": self._choices(run), "entries": [],
                "error": ""}

    def _chooser(self, row: dict[str, Any]) -> QComboBox:
        """The row's checkpoint chooser (made anew with the table: the table owns its widgets)."""
        choice = QComboBox()
        for text, value in row["choices"]:
            choice.addItem(text, value)
        choice.setCurrentIndex(max(0, choice.findData(row["checkpoint"])))
        choice.setToolTip("The checkpoint of this run to measure")
        choice.currentIndexChanged.connect(lambda i, r=row, c=choice: self._choose(r, c.itemData(i)))
        return choice

    def set_checkpoint(self, row: int, checkpoint: str) -> None:
        """Choose row ``row``'s checkpoint (``latest``, ``best`` or a step), as its chooser does."""
        self._choose(self.rows[row], str(checkpoint))

    def _choose(self, row: dict[str, Any], checkpoint: str) -> None:
        if row["checkpoint"] != checkpoint:
            row["checkpoint"], row["entries"], row["error"] = checkpoint, [], ""
            # Not from inside the chooser's own signal: the fill replaces the chooser.
            QTimer.singleShot(0, self, self._fill)

    def _fill(self) -> None:
        """Lay the rows out: one table row per measured entry (or one for an unmeasured row)."""
        entries = self.entries()
        columns = figure_columns(entries) if entries else []
        headings = FIXED + [heading for _, heading, _ in columns] + [LISTENING]
        marks = {key: best_rows(entries, key, better) for key, _, better in columns}
        self.table.setRowCount(0)  # deletes the choosers too: each fill makes its own
        lines = [(row, entry) for row in self.rows for entry in (row["entries"] or [None])]
        self.table.setColumnCount(len(headings))
        self.table.setHorizontalHeaderLabels(headings)
        self.table.setRowCount(len(lines))
        index = 0
        for r, (row, entry) in enumerate(lines):
            name_item = QTableWidgetItem(row["run"].name + (" (failed)" if row.get("error") else ""))
            name_item.setToolTip(row.get("error") or str(row["run"]))
            self.table.setItem(r, 0, name_item)
            if entry is None or entry is row["entries"][0]:
                self.table.setCellWidget(r, 1, self._chooser(row))
            else:
                self.table.setItem(r, 1, QTableWidgetItem(entry.get("variant", "")))
            if entry is not None:
                for c, (key, _heading, _better) in enumerate(columns, start=len(FIXED)):
                    self.table.setItem(r, c, self._figure(entry, key, index in marks[key]))
                index += 1
            cells = self._checkpoints(row["run"]).listening
            name = (entry or {}).get("checkpoint") or self._checkpoint_file(row)
            if entry is not None and entry.get("variant"):
                name = f"{name} {entry['variant']}"
            self.table.setItem(r, len(headings) - 1, QTableWidgetItem(cells.get(name, "")))
        self.table.resizeColumnsToContents()

    def _checkpoint_file(self, row: dict[str, Any]) -> str:
        choice = row["checkpoint"]
        if choice == "best":
            return "best.pt"
        if choice == "latest":
            return self._checkpoints(row["run"]).latest
        return checkpoint_name(int(choice)) if str(choice).isdigit() else ""

    @staticmethod
    def _figure(entry: dict[str, Any], key: str, best: bool) -> QTableWidgetItem:
        value = figure_value(entry, key)
        text = "–" if value is None or not math.isfinite(value) else f"{value:.3f}"
        item = QTableWidgetItem(text + (BEST_MARK if best else ""))
        item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if best:
            font = QFont()
            font.setBold(True)
            item.setFont(font)
            item.setForeground(QBrush(QColor(theme.OK)))
        return item

    # -- the runner -----------------------------------------------------------------------------

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Clips to measure on", self.data_edit.text())
        if folder:
            self.data_edit.setText(folder)

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(done)

    def _on_measured(self, index: int, entries: list) -> None:
        if index < len(self.rows):
            self.rows[index]["entries"] = entries
            self._fill()

    def _on_failed(self, index: int, message: str) -> None:
        if index < len(self.rows):
            self.rows[index]["error"] = message
            self._fill()
        self.status.setText(message)

    def _on_finished(self, complete: bool) -> None:
        self.measure_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        failed = sum(bool(row.get("error")) for row in self.rows)
        if not complete:
            self.status.setText("Cancelled; the figures measured so far are shown")
        elif not failed:
            clips = self.entries()[0].get("files") if self.entries() else 0
            self.status.setText(f"{len(self.rows)} checkpoint(s) measured on the same {clips} clip(s); "
                                f"{BEST_MARK.strip()} the best in its column")
        if self._rows_dirty:
            self._rows_dirty = False
            self._sync_rows()
