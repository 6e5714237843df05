"""The runs trained or opened lately, kept in QSettings (``runs/recent``, newest first, and
``runs/last``, which the app opens at start), and the Recent runs menu built from them."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QMenu

from vqstudio.train.runfolder import RunFolder

MAX_RECENT = 10


class RecentRuns:
    """The recent-runs list in ``settings``."""

    def __init__(self, settings: QSettings):
        self.settings = settings

    def paths(self) -> list[str]:
        value = self.settings.value("runs/recent", [])
        if isinstance(value, str):  # QSettings returns a one-item list as a string
            value = [value]
        return [str(v) for v in value or []]

    def remember(self, run_dir: str | Path) -> None:
        """Put ``run_dir`` first, and make it the run opened at the next start."""
        path = str(Path(run_dir).resolve())
        recent = [path] + [p for p in self.paths() if p != path]
        self.settings.setValue("runs/recent", recent[:MAX_RECENT])
        self.settings.setValue("runs/last", path)
        self.settings.sync()

    def last(self) -> Path | None:
        """The run last trained or opened, if its folder still holds a run."""
        value = self.settings.value("runs/last")
        if value and RunFolder(value).exists():
            return Path(value)
        return None

    def fill_menu(self, menu: QMenu, open_run: Callable[[Path], object]) -> None:
        """Fill ``menu`` (on its aboutToShow) with the runs that still exist and "Clear list"."""
        menu.clear()
        runs = [p for p in self.paths() if RunFolder(p).exists()]
        for path in runs:
            action = menu.addAction(path)
            action.triggered.connect(lambda _=False, p=path: open_run(Path(p)))
        if not runs:
            menu.addAction("(none yet)").setEnabled(False)
        else:
            menu.addSeparator()
            clear = menu.addAction("Clear list")
            clear.triggered.connect(lambda: self.settings.setValue("runs/recent", []))
