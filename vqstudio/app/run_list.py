"""The runs open side by side: the run the window trains or shows, and others opened for
comparison, each with a colour and a "show on curves" flag; forks know their parent.

The first entry is always the window's own :class:`~vqstudio.app.store.RunStore` (the *current*
run, whatever it is training or showing); :meth:`RunList.add` opens another run folder into a
store of its own. Reading a folder (``metrics.csv`` can hold 100k rows) happens off the GUI
thread, one folder at a time (``history_reader.py``, shared with the window's Open run); the
finished history is put into the store in the GUI thread, which is cheap (numpy columns).
Everything public here is for the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from vqstudio.app import theme
from vqstudio.app.history_reader import HistoryReader
from vqstudio.app.store import RunStore

CURRENT = "current"  # the key of the window's own run


@dataclass
class RunEntry:
    key: str  # CURRENT, or the resolved folder path
    store: RunStore
    colour: str
    shown: bool = True
    loading: bool = False
    notices: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path | None:
        return self.store.run_dir

    @property
    def name(self) -> str:
        path = self.path
        return path.name if path is not None else "new run"

    @property
    def parent(self) -> str | None:
        """The resolved folder of the run this one was forked from, if any."""
        forked = self.store.forked_from
        return _resolved(forked["run"]) if forked.get("run") else None


class RunList(QObject):
    """The open runs, in the order they were opened (the current run first)."""

    changed = Signal()  # an entry came, went, finished loading, or changed colour or flag
    notice = Signal(str)  # a readable line for the window's notice bar

    def __init__(self, current: RunStore, parent: QObject | None = None,
                 reader: HistoryReader | None = None):
        super().__init__(parent)
        self.entries: list[RunEntry] = [RunEntry(CURRENT, current, theme.curve_color(0))]
        self.reader = reader if reader is not None else HistoryReader(self)
        self._current_dir: Path | None = current.run_dir
        self.reader.loaded.connect(self._on_loaded)

    # -- reading --------------------------------------------------------------------------------

    @property
    def current(self) -> RunEntry:
        return self.entries[0]

    def entry(self, key: str) -> RunEntry | None:
        return next((e for e in self.entries if e.key == key), None)

    def shown(self) -> list[RunEntry]:
        """The entries ticked "show on curves" (loaded ones only)."""
        return [e for e in self.entries if e.shown and not e.loading]

    def comparing(self) -> bool:
        """Whether curves of runs other than the current one are to be shown."""
        return any(e.key != CURRENT for e in self.shown())

    def tree(self) -> list[tuple[RunEntry, int]]:
        """(entry, depth) in display order: each fork right under its parent, one level in."""
        by_key = {self._path_key(e): e for e in self.entries if self._path_key(e)}
        children: dict[str, list[RunEntry]] = {}
        roots = []
        for entry in self.entries:
            parent = entry.parent
            if parent is not None and parent in by_key and by_key[parent] is not entry:
                children.setdefault(parent, []).append(entry)
            else:
                roots.append(entry)
        out: list[tuple[RunEntry, int]] = []
        seen: set[int] = set()

        def walk(entry: RunEntry, depth: int) -> None:
            if id(entry) in seen:
                return
            seen.add(id(entry))
            out.append((entry, depth))
            for child in children.get(self._path_key(entry) or "", []):
                walk(child, depth + 1)

        for root in roots:
            walk(root, 0)
        for entry in self.entries:  # a cycle of parents (hand-edited configs): still listed
            walk(entry, 0)
        return out

    # -- changing -------------------------------------------------------------------------------

    def add(self, path: str | Path) -> str | None:
        """Open the run folder ``path`` beside the others (read in a background thread); returns
        its key, or None with a notice if it is already open or not a run."""
        folder = Path(path)
        key = _resolved(folder)
        if key == self._path_key(self.current):
            self.notice.emit(f"{folder.name} is already shown: it is the current run")
            return None
        if self.entry(key) is not None:
            self.notice.emit(f"{folder.name} is already in the Runs list")
            return None
        if not folder.is_dir():
            self.notice.emit(f"{folder}: no such run folder — pick a folder that holds config.toml")
            return None
        store = RunStore(self)
        store.run_dir = folder
        entry = RunEntry(key, store, self._free_colour(), loading=True)
        self.entries.append(entry)
        self.reader.read(key, folder)
        self.changed.emit()
        return key

    def remove(self, key: str) -> None:
        """Close a compared run (the current one stays)."""
        entry = self.entry(key)
        if entry is None or key == CURRENT:
            return
        self.reader.cancel(key)
        self.entries.remove(entry)
        self.changed.emit()

    def set_shown(self, key: str, shown: bool) -> None:
        entry = self.entry(key)
        if entry is not None and entry.shown != bool(shown):
            entry.shown = bool(shown)
            self.changed.emit()

    def sync_current(self) -> None:
        """Follow the current store to another run folder (the window opened or started one): a
        compared entry of that folder is dropped, it is the current run now."""
        run_dir = self.current.store.run_dir
        if run_dir == self._current_dir:
            return
        self._current_dir = run_dir
        key = self._path_key(self.current)
        twin = self.entry(key) if key else None
        if twin is not None and twin is not self.current:
            self.entries.remove(twin)
        self.changed.emit()

    def wait_loaded(self, timeout: float | None = None) -> bool:
        """Join the loading thread (closing, tests; folders still waiting are not read); True if
        none is left running."""
        return self.reader.wait(timeout)

    # -- internals ------------------------------------------------------------------------------

    def _on_loaded(self, key: str, result: object) -> None:
        entry = self.entry(key)
        if entry is None or not entry.loading or key == CURRENT:
            return  # removed while it was loading, or another reader's key
        if isinstance(result, str):
            self.entries.remove(entry)
            self.notice.emit(result)
        else:
            entry.store.load_history(result)
            entry.notices = list(result.notices)
            entry.loading = False
            for line in result.notices:
                self.notice.emit(line)
        self.changed.emit()

    def _free_colour(self) -> str:
        used = {e.colour for e in self.entries}
        for i in range(len(theme.CURVE_COLORS)):
            if theme.curve_color(i) not in used:
                return theme.curve_color(i)
        return theme.curve_color(len(self.entries))

    @staticmethod
    def _path_key(entry: RunEntry) -> str | None:
        return _resolved(entry.path) if entry.path is not None else None


def _resolved(path: str | Path) -> str:
    try:
        return str(Path(path).resolve())
    except OSError:
        return str(Path(path).absolute())


def link_runs(window) -> RunList:
    """The window's Runs list, around its store: handed to every panel that takes one
    (``set_runs``: the Runs, Losses, Compare and Audition panels), its notices to the notice bar."""
    runs = RunList(window.store, window, window.history_reader)
    runs.notice.connect(window.show_notice)
    for panel in window.panels.values():
        if hasattr(panel, "set_runs"):
            panel.set_runs(runs)
    return runs
