"""The settings editor, New run, the Live settings group and Fork from here, with real widgets
(offscreen), a real worker training real run folders, and the real CLI for --set's message."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from helpers import TINY, answer_next_dialog, one_line_error, open_and_wait, run_cli, tiny_config, train_tiny_run, write_corpus
from vqstudio.app import theme
from vqstudio.app.dialogs import NewRunDialog
from vqstudio.app.fork_dialog import fork_from_here
from vqstudio.app.panels.live_settings import IN_WEIGHTS_PANEL, offered
from vqstudio.app.settings_editor import SettingsEditor
from vqstudio.app.window import MainWindow
from vqstudio.config import load_config, load_preset
from vqstudio.config_fields import fields
from vqstudio.train.runfolder import RunFolder
from vqstudio.train.settings import SETTINGS

pytestmark = pytest.mark.gui

WAIT_MS = 60_000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"), files=2)


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat), player=None)
    win.worker.probe_seconds = 0.5
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def _type_tiny(editor: SettingsEditor) -> None:
    """The tests' tiny model, typed into the editor as --set texts."""
    for item in TINY:
        key, _, text = item.partition("=")
        editor.set_text(key, text)


# -- the editor ---------------------------------------------------------------------------------


def test_editor_shows_every_setting_with_the_preset_value_and_highlights_changes(qtbot):
    preset = load_preset("seed-fixed")
    editor = SettingsEditor(preset)
    qtbot.addWidget(editor)
    assert set(editor.rows) == {f.key for f in fields(preset)}
    assert {key.split(".")[0] for key in editor.rows} == {"data", "model", "loss", "train"}
    row = editor.rows["model.codebook_size"]
    assert row.text() == row.reference_text == str(preset.model.codebook_size)
    assert editor.rows["loss.mel_norm"].text() == "log" and editor.rows["model.ema"].text() == "true"
    assert editor.valid and editor.changes() == {}
    empty = editor.rows["data.path"]  # an empty path says what empty means, not ""
    assert empty.reference.text() == "(empty: the built-in demo corpus)" == empty.input.placeholderText()

    editor.set_text("model.codebook_size", "512")
    editor.set_text("loss.mel_norm", "tanh")
    assert editor.changes() == {"model.codebook_size": 512, "loss.mel_norm": "tanh"}
    assert editor.rows["model.codebook_size"].changed and theme.ACCENT in row.label.styleSheet()
    assert not editor.rows["model.hop"].changed and editor.rows["model.hop"].label.styleSheet() == ""
    assert editor.rows["model.codebook_size"].reference_text == str(preset.model.codebook_size)
    assert [editor.tabs.tabText(i) for i in range(4)] == ["data", "model (1)", "loss (1)", "train"]
    config = editor.config()
    assert config.model.codebook_size == 512 and config.loss.mel_norm == "tanh"
    assert editor.override_texts() == ["model.codebook_size=512", "loss.mel_norm=tanh"]

    editor.set_text("model.codebook_size", str(preset.model.codebook_size))  # back: not a change
    assert not editor.rows["model.codebook_size"].changed and list(editor.changes()) == ["loss.mel_norm"]


def test_weights_follow_the_terms_of_the_edited_configuration(qtbot):
    editor = SettingsEditor(load_preset("tiny-cpu"))
    qtbot.addWidget(editor)
    assert "loss.weights.adversarial" not in editor.rows
    editor.set_text("loss.weights.mrstft", "2.5")
    editor.set_text("loss.adversarial", "true")
    assert "loss.weights.adversarial" in editor.rows and "loss.weights.feature_matching" in editor.rows
    assert editor.rows["loss.weights.mrstft"].text() == "2.5"  # kept across the rebuild
    assert editor.config().loss.resolved_weights()["mrstft"] == 2.5


@pytest.mark.parametrize("item", ["model.hop=7", "model.codebook_size=many", "train.lr=-1",
                                  "model.ema_decay=1.5", "loss.mel_bins=[64]"])
def test_a_bad_value_shows_the_set_message_inline_and_disables_start(qtbot, tmp_path, item):
    cli = one_line_error(run_cli("train", "--run", str(tmp_path / "r"), "--steps", "1", "--set", item))
    dialog = NewRunDialog(tmp_path / "runs", "tiny-cpu")
    qtbot.addWidget(dialog)
    assert dialog.ok.isEnabled()
    key, _, text = item.partition("=")
    dialog.editor.set_text(key, text)
    assert not dialog.ok.isEnabled()
    assert cli == f"vqstudio: {dialog.editor.message}"  # word for word what --set says
    shown = [k for k, row in dialog.editor.rows.items() if not row.message.isHidden()]
    assert shown == [key]
    # Under the field, what is wrong with it (not the command line's "override: model.hop = ..."),
    # with the same fix; the summary names the field.
    problem, _, fix = cli.removeprefix("vqstudio: override: ").partition(" — ")
    inline = dialog.editor.rows[key].message.text()
    assert not inline.startswith(("override", key, f"[{key.split('.')[0]}]")), inline
    assert inline.endswith(f" — {fix}") and inline.split(" — ")[0].lower() in problem.lower()
    assert dialog.editor.summary.text() == f"{problem} — {fix}"
    assert not (tmp_path / "r").exists()


def test_changing_the_preset_keeps_what_was_typed(qtbot, tmp_path):
    dialog = NewRunDialog(tmp_path / "runs", "tiny-cpu")
    qtbot.addWidget(dialog)
    dialog.editor.set_text("loss.mel_norm", "minmax")
    dialog.preset.setCurrentIndex(dialog.preset.findText("speech-24k"))
    speech = load_preset("speech-24k")
    assert dialog.editor.rows["model.codebook_size"].text() == str(speech.model.codebook_size)
    assert dialog.editor.rows["loss.mel_norm"].text() == "minmax"
    assert dialog.editor.config().preset == "speech-24k"


def test_new_run_trains_with_the_changed_settings(qtbot, window, corpus, tmp_path):
    run = tmp_path / "edited"

    def fill(dialog):
        dialog.preset.setCurrentIndex(dialog.preset.findText("tiny-cpu"))
        _type_tiny(dialog.editor)
        dialog.editor.set_text("loss.mel_norm", "tanh")
        dialog.editor.set_text("model.codebook_size", "48")
        dialog.data.setText(str(corpus))
        dialog.run.setText(str(run))
        assert dialog.ok.isEnabled(), dialog.problem.text() or dialog.editor.message
        dialog.ok.click()

    answer_next_dialog(fill)
    window.new_action.trigger()
    assert window.worker.is_running
    qtbot.waitUntil(lambda: window.store.current_step >= 1, timeout=WAIT_MS)
    config = load_config(run / "config.toml")
    assert config.loss.mel_norm == "tanh" and config.model.codebook_size == 48
    assert config.data.path == str(corpus.resolve())


# -- live settings in the app -------------------------------------------------------------------


def test_the_app_offers_exactly_the_live_settings(window):
    box = window.panels["weights"].live
    assert set(box.inputs) == {s.name for s in offered()}
    assert set(box.inputs) | set(IN_WEIGHTS_PANEL) == set(SETTINGS)


def test_a_live_change_from_the_app_applies_at_a_step_with_a_marker(qtbot, window, corpus, tmp_path):
    window.set_new_run(tiny_config(corpus), tmp_path / "live")
    window.start_training()
    qtbot.waitUntil(lambda: window.store.current_step >= 2, timeout=WAIT_MS)
    box = window.panels["weights"].live
    box.set_value("mel_norm", "tanh")
    assert box.status["mel_norm"].text() == "pending"
    box.set_value("ema_decay", "2")  # refused by the configuration's rule
    qtbot.waitUntil(lambda: box.status["mel_norm"].text().startswith("applied @ step"), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: box.status["ema_decay"].text().startswith("refused"), timeout=WAIT_MS)
    assert "model.ema_decay must be within (0, 1)" in box.status["ema_decay"].toolTip()
    event = next(e for e in window.store.events if e["kind"] == "mel_norm")
    assert event["step"] >= 2 and (event["old"], event["new"]) == ("log", "tanh")
    losses = window.panels["losses"]
    qtbot.waitUntil(lambda: any(getattr(m, "event_kind", None) == "mel_norm" for m in losses.markers),
                    timeout=WAIT_MS)
    marker = next(m for m in losses.markers if m.event_kind == "mel_norm")
    assert marker.value() == event["step"] and marker.label.toPlainText() == "mel norm log→tanh"
    window.stop_training()
    qtbot.waitUntil(lambda: not window.worker.is_running, timeout=WAIT_MS)
    assert any(e["kind"] == "mel_norm" for e in RunFolder(tmp_path / "live").read_events())


# -- Fork from here -----------------------------------------------------------------------------


def test_fork_from_here_writes_a_fork_that_records_its_parent(qtbot, window, tmp_path):
    parent, _ = train_tiny_run(tmp_path, "parent", steps=8, checkpoint_every=4)
    open_and_wait(qtbot, window, parent)
    fork = tmp_path / "parent-fork"
    seen = {}

    def fill(dialog):
        assert dialog.folder.text() == str(fork)
        assert dialog.editor.rows["loss.mel_norm"].reference_text == "log"  # the parent's value
        dialog.checkpoint.setCurrentIndex(dialog.checkpoint.findData("4"))
        dialog.editor.set_text("loss.mel_norm", "tanh")
        dialog.editor.set_text("train.lr", "5e-4")
        seen["carry"] = dialog.carry.text()
        QApplication.processEvents()
        dialog.ok.click()

    answer_next_dialog(fill)
    job = fork_from_here(window)
    assert job is not None
    assert "loss.mel_norm (live)" in seen["carry"] and "carry over" in seen["carry"]
    qtbot.waitUntil(lambda: window.worker.is_running, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.store.current_step >= 5, timeout=WAIT_MS)
    config = load_config(fork / "config.toml")
    assert config.forked_from["run"] == str(parent.resolve())
    assert config.forked_from["step"] == 4 and config.forked_from["checkpoint"] == "step-00000004.pt"
    assert config.forked_from["changed"] == {"loss.mel_norm": "tanh", "train.lr": 0.0005}
    assert config.loss.mel_norm == "tanh"
    notice = window.notice_label.text()
    assert notice.startswith(f"Forked {parent}") and "at step 4" in notice and "carried over" in notice
    assert window.store.run_dir == fork


def test_fork_from_here_without_a_run_says_what_to_do(window):
    assert fork_from_here(window) is None
    assert "Nothing to fork yet" in window.notice_label.text()
