"""The audition panel: hear what the codec does to one clip.

Pick a clip (the training probe, a corpus file, or an audio file dropped on the window), then
switch between the original (A), the reconstruction (B) and their residual (R) at the same
playhead, loop a region of the waveform, match loudness, and decode with only the first k
quantizer levels. Reconstructions of anything but the latest probe are asked of the training
worker between steps (``reconstruction_requests``: answers matched by id, a late one for a clip
no longer shown dropped).

Keys (while the panel has focus): Space or P play/pause, A / B / R pick a source, Tab goes back to
the source heard before. The panel accepts the ShortcutOverride for Space, so Space means "play"
here and "train" elsewhere. Its parts: ``audition_layout`` (its widgets), ``audition_clip``,
``reconstruction_requests``, ``audition_transport`` (the transport row and its keys),
``audition_readouts``. ``refresh()`` (the window's 30 Hz timer) moves the playhead line and, only
when the store's version moved, picks up a new probe or run information.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QWidget

from vqstudio.app import theme
from vqstudio.app.notices import show_notice
from vqstudio.app.panels.audition_clip import Clip, data_folder, list_audio, read_clip
from vqstudio.app.panels.audition_readouts import levels_text, status_text
from vqstudio.app.panels.audition_layout import build_audition
from vqstudio.app.panels.audition_transport import SOURCE_COLORS
from vqstudio.app.panels.clip_chooser import OPEN_FILE, PROBE, ask_for_audio_file
from vqstudio.app.panels.reconstruction_requests import ReconstructionRequests
from vqstudio.app.playback_engine import RECONSTRUCTION
from vqstudio.errors import UserError

# A file is reconstructed again as training moves on, but not more often than this: a 20 s clip
# through a large model costs the training thread real time.
FILE_REFRESH_S = 10.0


class AuditionPanel(QWidget):
    """Listen to the original, the reconstruction and the residual of a clip.

    ``store`` is the :class:`~vqstudio.app.store.RunStore` (``info``, ``probe``, ``version``),
    ``worker`` the :class:`~vqstudio.app.worker.TrainingWorker` that reconstructs clips (``None``:
    only the probe's own reconstruction), ``player`` the :class:`~vqstudio.app.player.ABPlayer`
    (``None`` or unavailable: the transport is disabled with a message, the rest works). The
    window owns and closes the player.
    """

    # For the spectrogram panel, which shows the training probe: the playhead in seconds while
    # the probe is the clip, -1 (hide it) while another clip is; and the loop region moved here.
    playhead_changed = Signal(float)
    loop_changed = Signal(float, float)

    def __init__(self, store: Any, worker: Any, player: Any | None, parent: QWidget | None = None):
        super().__init__(parent)
        self.store, self.worker, self.player = store, worker, player
        self.clip: Clip | None = None
        self.requests = ReconstructionRequests(worker)
        self._seen_version = -1
        self._seen_info: dict | None = None
        self._seen_probe: dict | None = None
        self._model_rate = 0
        self._probe_playhead = -1.0  # what playhead_changed said last

        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        build_audition(self)  # its widgets and their wiring (audition_layout.py)
        if worker is not None:
            worker.result.connect(self._on_result)
        self.refresh()

    # -- the redraw timer -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Called by the window's ~30 Hz timer: move the playhead; pick up new run information or
        a new probe when the store changed."""
        if self.transport.check_player():
            self._show_player_state()
        version = getattr(self.store, "version", 0)
        if version != self._seen_version:
            self._seen_version = version
            self._sync_info()
            self._sync_probe()
        if self.transport.ok and self.transport.follow():
            self.waveform.set_playhead(self.transport.playhead)
        on_probe = self.transport.ok and self.clip is not None and self.clip.is_probe
        probe_playhead = self.transport.playhead if on_probe else -1.0
        if probe_playhead != self._probe_playhead:
            self._probe_playhead = probe_playhead
            self.playhead_changed.emit(probe_playhead)

    def _show_player_state(self) -> None:
        ok = self.transport.ok
        self.waveform.playhead.setVisible(ok)
        text = "" if ok else f"Playback unavailable: {self.transport.unavailable_reason()}"
        show_notice(self.device_notice, text, "error")

    def _sync_info(self) -> None:
        info = getattr(self.store, "info", None) or {}
        if info is self._seen_info:
            return
        self._seen_info = info
        self._model_rate = int(info.get("sample_rate") or 0)
        levels = int(info.get("rvq_levels") or 0)
        self.levels_box.set_count(levels)
        self.levels_box.setEnabled(levels > 1 and self.worker is not None)
        self.clip_box.name_probe(info.get("probe_file"))
        self.extra.set_run(info.get("run_dir"))
        if info:
            files = info.get("corpus_files")
            self.clip_box.add_files(list_audio(self._data_folder()) if files is None else files)

    def _data_folder(self) -> Path | None:
        return data_folder(self._seen_info or {})

    def _sync_probe(self) -> None:
        probe = getattr(self.store, "probe", None) or None
        if probe is None or probe is self._seen_probe or "original" not in probe:
            return
        self._seen_probe = probe
        if self.clip is None and self.clip_box.currentData() == PROBE or (
            self.clip is not None and self.clip.is_probe
        ):
            self._use_probe(probe)
        elif self.clip is not None and self.requests.idle_for(FILE_REFRESH_S):
            # Training moved on: hear the open file through the newer weights too.
            self._request_reconstruction()

    # -- clips ----------------------------------------------------------------------------------

    def _use_probe(self, probe: dict, fresh: bool = False) -> None:
        """Hear ``probe``: a newer reconstruction of the same segment swaps in at the same
        playhead; a different segment (or ``fresh``, coming from another clip) replaces the
        clip."""
        rate = int(probe.get("sample_rate") or self._model_rate)
        original = np.asarray(probe["original"], dtype=np.float32).reshape(-1)
        reconstruction = probe.get("reconstruction")
        full = self.levels_box.levels is None
        same = (
            self.clip is not None
            and self.clip.is_probe
            and self.clip.rate == rate
            and np.array_equal(self.clip.original, original)
        )
        if not same:
            self._set_clip(Clip("training probe", None, original, rate), keep_place=not fresh)
        clip = self.clip
        if full and reconstruction is not None:
            audio = np.asarray(reconstruction, dtype=np.float32).reshape(-1)
            self._take_reconstruction(clip, audio, rate, f"step {probe.get('step', '?')}")
        else:
            self._request_reconstruction()
        self._show_status()

    def set_clip_from_file(self, path: str | Path) -> bool:
        """Audition the first ~20 s of an audio file, read at the model's rate. A file that
        cannot be used leaves the current clip and shows a notice; returns whether it loaded."""
        try:
            clip, note = read_clip(path, self._model_rate or None)
        except UserError as error:
            show_notice(self.notice, str(error), "error")
            self._show_current_in_box()
            return False
        show_notice(self.notice, note, "warning")
        self._set_clip(clip, keep_place=False)
        self._request_reconstruction()
        self._show_current_in_box()
        self._show_status()
        return True

    def add_files(self, paths: list[str]) -> None:
        """List audio files in the clip chooser (e.g. the rest of those given on the command
        line)."""
        self.clip_box.add_files(paths)

    def _set_clip(self, clip: Clip, keep_place: bool) -> None:
        """Make ``clip`` the one heard; a new file starts from the top without a loop, a new probe
        segment keeps the playhead and the loop (clamped by the player)."""
        self.clip = clip
        self.requests.forget()
        if self.transport.ok:
            self.player.set_clip(clip.original, None, clip.rate)
            if not keep_place:
                self.player.seek(0.0)
        if not keep_place and self.loop_box.isChecked():
            self.loop_box.setChecked(False)
        self.extra.set_clip(clip)
        self._redraw()

    def _show_current_in_box(self) -> None:
        clip = self.clip
        self.clip_box.show_choice(None if clip is None or clip.is_probe else clip.path,
                                  clip.name if clip is not None else "")

    def _on_clip_chosen(self, index: int) -> None:
        choice = self.clip_box.itemData(index)
        if choice == PROBE:
            show_notice(self.notice, "")
            self.clip = None
            self.requests.forget()
            probe = getattr(self.store, "probe", None)
            if probe and "original" in probe:
                self._seen_probe = probe
                self._use_probe(probe, fresh=True)
            else:
                if self.transport.ok:
                    self.player.pause()
                self._redraw()
                self._show_status()
        elif choice == OPEN_FILE:
            path = ask_for_audio_file(self, self._data_folder() or Path.home())
            if path:
                self.set_clip_from_file(path)
            else:
                self._show_current_in_box()
        elif choice:
            self.set_clip_from_file(choice)
        self.setFocus()

    # -- reconstructions ------------------------------------------------------------------------

    def set_runs(self, runs: Any) -> None:
        """The runs added in the Runs panel are offered as sources 1 and 2."""
        self.extra.set_runs(runs)

    def model_changed(self) -> None:
        """A followed run saved a checkpoint: hear the clip on show through it (and through 1 or
        2 where they are that run's latest); the probe is heard through it by the follower."""
        if self.clip is not None and not self.clip.is_probe:
            self._request_reconstruction()
        self.extra.checkpoints_changed()

    def _request_reconstruction(self, same_step: bool = False) -> None:
        """Ask the worker to reconstruct the current clip with the current weights (``same_step``:
        those heard last) and levels."""
        if self.clip is None:
            return
        try:
            self.requests.ask(self.clip, self._model_rate, self.levels_box.levels, same_step)
        except UserError as error:
            show_notice(self.notice, str(error), "error")
            return
        self._show_status()

    def _on_result(self, result: dict) -> None:
        request = self.requests.answered(result, self.clip)
        if request is None:
            return
        try:
            audio, rate, about = self.requests.read(result, request, self._model_rate,
                                                    self.levels_box.count)
        except UserError as error:
            show_notice(self.notice, str(error), "error")
        else:
            self._take_reconstruction(request.clip, audio, rate, about)
        self._show_status()

    def _take_reconstruction(self, clip: Clip, audio: np.ndarray, rate: int, about: str) -> None:
        """Swap a reconstruction in at the same playhead (the player crossfades to it)."""
        if self.transport.ok:
            self.player.set_source_buffer(RECONSTRUCTION, audio, sample_rate=rate)
        clip.reconstruction, clip.about = clip.fitted(audio, rate), about
        self.extra.reconstruction_changed(about)
        self._redraw()

    def _on_levels(self, levels: int | None) -> None:
        self.requests.forget()  # an answer still on its way is for the old levels
        self.extra.set_levels(levels)
        if self.clip is None:
            return
        if self.clip.is_probe and levels is None and self._seen_probe:
            self._use_probe(self._seen_probe)
        else:
            self._request_reconstruction(same_step=True)

    def set_levels(self, levels: int | None) -> None:
        """Decode with the first ``levels`` quantizer levels (None: all of them)."""
        self.levels_box.set_levels(levels)

    # -- transport ------------------------------------------------------------------------------

    def toggle_playback(self) -> None:
        """Play or pause (Space, P)."""
        if self.clip is not None:
            self.transport.toggle()

    def select_source(self, name: str) -> None:
        """Listen to ``name`` (original, reconstruction, residual) from the same playhead."""
        self.transport.select(name)

    def toggle_last_source(self) -> None:
        """Go back to the source heard before the current one (Tab)."""
        self.transport.back()

    @property
    def selected(self) -> str:
        """The source heard: original, reconstruction or residual."""
        return self.transport.selected

    def set_loop(self, start_s: float, end_s: float) -> None:
        """Loop ``[start_s, end_s)`` of the clip (from the spectrogram's selection, or code)."""
        self.transport.set_loop(start_s, end_s)

    def clear_loop(self) -> None:
        """Stop looping."""
        self.loop_box.setChecked(False)

    def _on_loop_moved(self, start: float, end: float) -> None:
        if self.clip is not None and self.clip.is_probe:
            self.loop_changed.emit(start, end)

    # -- keys (the transport's while the panel has focus) ---------------------------------------

    def event(self, event: QEvent) -> bool:
        play = lambda: self.toggle_playback()  # noqa: E731  (the panel's: needs a clip)
        return self.transport.key_event(event, play) or super().event(event)

    def close_sources(self) -> None:
        """End the checkpoint inference thread (the window's close; tests)."""
        self.extra.close()

    # -- read-outs ------------------------------------------------------------------------------

    def _redraw(self) -> None:
        clip = self.clip
        if clip is None:
            self.waveform.show(None, None, 1, theme.ORIGINAL_COLOR)
        else:
            self.waveform.show(clip.original, clip.source(self.selected), clip.rate,
                               SOURCE_COLORS[self.selected])
        self._update_levels_label()

    def _update_levels_label(self) -> None:
        self.levels_label.setText(levels_text(self.clip, self.transport.gains))

    def _show_status(self) -> None:
        pending = self.requests.pending
        self.status.setText(status_text(
            self.clip, waiting=pending is not None, waiting_levels=pending and pending.levels,
            max_levels=self.levels_box.count, has_worker=self.worker is not None,
            training=getattr(self.worker, "is_running", True),
        ))
