"""The Runs panel: the current run and the runs opened beside it (forks indented under their
parent), a colour swatch and a "show on curves" tick each, their step and what loading them left
out. Add opens more run folders (read in the background, so a 100k-row run does not stop the
window); the Losses panel overlays the ticked ones and the Compare panel measures them.

The list itself is :class:`~vqstudio.app.run_list.RunList`, which the window hands to this panel
(``set_runs``); the panel only shows it and edits it.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from vqstudio.app.run_list import CURRENT, RunEntry, RunList

KEY_ROLE = Qt.ItemDataRole.UserRole


def swatch(colour: str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(colour))
    return QIcon(pixmap)


class RunsPanel(QWidget):
    """Shows and edits the window's :class:`RunList`."""

    def __init__(self, store, worker=None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.worker = store, worker
        self.runs: RunList | None = None
        self._dirty = True
        self._shown_step: dict[str, int] = {}

        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["run", "step", "notes"])
        self.tree.setRootIsDecorated(False)
        header = self.tree.header()  # the name takes what step and notes leave (they stay whole)
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in (1, 2):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.setIndentation(18)
        self.tree.setToolTip("Tick a run to show its curves in the Losses panel; forks are listed "
                             "under the run they were forked from")
        self.tree.itemChanged.connect(self._item_changed)
        self.add_button = QPushButton("Add run…")
        self.add_button.setToolTip("Open another run folder beside this one, to compare")
        self.add_button.clicked.connect(self.add_dialog)
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Take the selected run off the list (its folder is untouched)")
        self.remove_button.clicked.connect(self.remove_selected)
        self.hint = QLabel()  # one line (a wrapped label's height follows the dock's width)
        self.hint.setMinimumWidth(1)
        self.tree.setMinimumHeight(40)
        self.hint.setObjectName("hint")

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.hint)

    # -- public ---------------------------------------------------------------------------------

    def set_runs(self, runs: RunList) -> None:
        self.runs = runs
        runs.changed.connect(self._mark_dirty)
        self._dirty = True

    def add_run(self, path: str | Path) -> str | None:
        """Open the run folder ``path`` beside the others (as Add does); returns its key."""
        return self.runs.add(path) if self.runs is not None else None

    def add_dialog(self) -> None:
        start = str(self.store.run_dir.parent) if self.store.run_dir is not None else ""
        folder = QFileDialog.getExistingDirectory(self, "Add a run to compare", start)
        if folder:
            self.add_run(folder)

    def remove_selected(self) -> None:
        for item in self.tree.selectedItems():
            if self.runs is not None:
                self.runs.remove(item.data(0, KEY_ROLE))

    def items(self) -> dict[str, QTreeWidgetItem]:
        """The tree's items by run key (tests and the compare panel read them)."""
        out = {}
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            out[item.data(0, KEY_ROLE)] = item
            stack += [item.child(i) for i in range(item.childCount())]
        return out

    def refresh(self) -> None:
        """Rebuild the tree when the list changed; keep the step column current (cheap)."""
        if self.runs is None:
            return
        self.runs.sync_current()
        if self._dirty:
            self._dirty = False
            self._rebuild()
            return
        for key, item in self.items().items():
            entry = self.runs.entry(key)
            if entry is not None and self._shown_step.get(key) != entry.store.current_step:
                self._shown_step[key] = entry.store.current_step
                item.setText(1, str(entry.store.current_step))

    # -- internals ------------------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._dirty = True

    def _rebuild(self) -> None:
        self.tree.blockSignals(True)
        self.tree.clear()
        parents: list[QTreeWidgetItem] = []
        for entry, depth in self.runs.tree():
            item = self._item(entry)
            del parents[depth:]
            if depth and parents:
                parents[-1].addChild(item)
            else:
                self.tree.addTopLevelItem(item)
            parents.append(item)
        self.tree.expandAll()
        for column in range(2):
            self.tree.resizeColumnToContents(column)
        self.tree.blockSignals(False)
        loading = sum(e.loading for e in self.runs.entries)
        shown = len(self.runs.shown())
        self.hint.setText(
            (f"reading {loading} run folder(s)… " if loading else "")
            + (f"{shown} run(s) on the curves" if self.runs.comparing() else
               "Add a run and tick it to overlay its curves on this one's")
        )

    def _item(self, entry: RunEntry) -> QTreeWidgetItem:
        item = QTreeWidgetItem()
        item.setData(0, KEY_ROLE, entry.key)
        name = entry.name + (" (current)" if entry.key == CURRENT else "")
        forked = entry.store.forked_from
        if forked.get("step") is not None:
            name += f" ← forked at {forked['step']}"
        item.setText(0, name + (" (reading…)" if entry.loading else ""))
        item.setIcon(0, swatch(entry.colour))
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(0, Qt.CheckState.Checked if entry.shown else Qt.CheckState.Unchecked)
        item.setText(1, "" if entry.loading else str(entry.store.current_step))
        self._shown_step[entry.key] = entry.store.current_step
        notes = entry.notices or entry.store.notices
        item.setText(2, f"{len(notes)} notice(s)" if notes else "")
        tip = str(entry.path) if entry.path is not None else "not started yet"
        if notes:
            tip += "\n" + "\n".join(notes)
        for column in range(3):
            item.setToolTip(column, tip)
        return item

    def _item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == 0 and self.runs is not None:
            self.runs.set_shown(item.data(0, KEY_ROLE), item.checkState(0) == Qt.CheckState.Checked)
