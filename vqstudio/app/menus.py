"""The window's commands: one QAction each, shown in the menu bar (File, Run, View, Help) and,
for the frequent ones, in the training toolbar. Shortcuts are window-wide; the Audition panel
takes Space for itself while it has focus."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QMessageBox, QToolBar, QToolButton

from vqstudio.app.about import about_html, shortcuts_html


def _action(window: QMainWindow, text: str, slot: Callable, shortcut=None, tip: str = "") -> QAction:
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    if tip:
        action.setToolTip(tip)
        action.setStatusTip(tip)
    action.triggered.connect(lambda _=False: slot())
    window.addAction(action)  # shortcuts work while the menu bar is hidden too
    return action


def build_menus(w) -> None:
    """Give the main window ``w`` its actions (``w.start_action`` ...), menu bar and toolbar."""
    w.new_action = _action(w, "&New run…", w.new_run_dialog, QKeySequence.StandardKey.New,
                           "Choose a preset, audio and run folder, and start training")
    w.open_action = _action(w, "&Open run…", w.open_run_dialog, QKeySequence.StandardKey.Open,
                            "Show a run's curves; Start resumes it from its latest checkpoint")
    w.save_action = _action(w, "&Save checkpoint", w.save_checkpoint, QKeySequence.StandardKey.Save,
                            "Save a checkpoint now (Ctrl+S)")
    w.quit_action = _action(w, "&Quit", w.close, "Ctrl+Q",
                            "Quit; training stops at the end of its step and saves a checkpoint")
    w.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
    w.start_action = _action(w, "Start", w.toggle_training, Qt.Key.Key_Space,
                             "Start, pause or resume training (Space)")
    w.stop_action = _action(w, "Stop", w.stop_training, None, "Stop training and save a checkpoint")
    w.fork_action = _action(w, "&Fork from here…", lambda: _fork(w), "Ctrl+Shift+F",
                            "A new run from a checkpoint of this one (latest, best or a step) with "
                            "settings changed; it continues the step count")
    w.reset_layout_action = _action(w, "&Reset layout", w.reset_layout, None,
                                    "Every panel back where it starts")
    w.shortcuts_action = _action(w, "&Keyboard shortcuts", lambda: _show_shortcuts(w), None)
    w.about_action = _action(w, "&About VQ Studio", lambda: _show_about(w), None)
    w.about_action.setMenuRole(QAction.MenuRole.AboutRole)
    w.recent_menu = QMenu("&Recent runs", w)
    w.recent_menu.aboutToShow.connect(lambda: w.recent.fill_menu(w.recent_menu, w.open_run))

    bar = w.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addActions([w.new_action, w.open_action])
    file_menu.addMenu(w.recent_menu)
    file_menu.addSeparator()
    file_menu.addAction(w.save_action)
    file_menu.addSeparator()
    file_menu.addAction(w.quit_action)
    run_menu = bar.addMenu("&Run")
    run_menu.addActions([w.start_action, w.stop_action])
    run_menu.addSeparator()
    run_menu.addAction(w.fork_action)
    run_menu.aboutToShow.connect(lambda: w.fork_action.setEnabled(_can_fork(w)))
    view_menu = bar.addMenu("&View")
    w.panel_actions = {}
    for key, dock in w.docks.items():
        toggle = dock.toggleViewAction()  # checked while shown; brings a closed dock back
        toggle.setStatusTip(f"Show or hide the {dock.windowTitle()} panel")
        view_menu.addAction(toggle)
        w.panel_actions[key] = toggle
    view_menu.addSeparator()
    view_menu.addAction(w.reset_layout_action)
    help_menu = bar.addMenu("&Help")
    help_menu.addActions([w.shortcuts_action, w.about_action])
    w.menus = {"file": file_menu, "run": run_menu, "view": view_menu, "help": help_menu}

    toolbar = QToolBar("Training", w)
    toolbar.setObjectName("toolbar-training")
    toolbar.setMovable(False)
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
    toolbar.toggleViewAction().setEnabled(False)  # always shown: it holds Start
    w.addToolBar(Qt.ToolBarArea.TopToolBarArea, toolbar)
    toolbar.addActions([w.start_action, w.stop_action])
    toolbar.addSeparator()
    toolbar.addActions([w.new_action, w.open_action])
    recent = QToolButton(w)
    recent.setText("Recent runs")
    recent.setMenu(w.recent_menu)
    recent.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    toolbar.addWidget(recent)
    toolbar.addSeparator()
    toolbar.addAction(w.save_action)
    w.toolbar = toolbar


def _fork(w) -> None:
    from vqstudio.app.fork_dialog import fork_from_here  # torch and the fork engine, when asked

    fork_from_here(w)


def _can_fork(w) -> bool:
    from vqstudio.app.fork_dialog import can_fork

    return can_fork(w)


def _message_box(w, title: str, text: str) -> QMessageBox:
    box = QMessageBox(QMessageBox.Icon.NoIcon, title, text, QMessageBox.StandardButton.Close, w)
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setModal(False)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.show()
    return box


def _show_about(w) -> QMessageBox:
    w.about_box = _message_box(w, "About VQ Studio", about_html(w.store.info.get("device")))
    return w.about_box


def _show_shortcuts(w) -> QMessageBox:
    w.shortcuts_box = _message_box(w, "Keyboard shortcuts", shortcuts_html())
    return w.shortcuts_box
