"""What a run's latest checkpoint does, shown without training: the run's probe clip (the few
seconds the training app probes) reconstructed through that checkpoint, and the checkpoint's
codebook figures, put into the store as the trainer's own ``probe`` and ``heavy`` payloads would
be. So the Spectrograms and Codebooks panels, and the Audition panel's probe clip, show the model
of a run that is not trained in this window:

- a run opened (File > Open, ``vqstudio app RUN``) is probed once its history is shown;
- a run another process trains is probed at each new checkpoint (``follow.py``).

The work is done on a :class:`~vqstudio.app.checkpoint_worker.CheckpointWorker` thread of its own,
started on the first ask (loading a model and decoding take seconds on a busy CPU); answers come
back to the GUI thread through a queued signal. Only the answer to the latest ask is shown: a
newer ask, another run prepared or a training started here (the trainer probes for itself) make
an older one stale.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from vqstudio.app.checkpoint_worker import CheckpointWorker
from vqstudio.train.checkpoint import latest_checkpoint
from vqstudio.train.runfolder import RunFolder

SOURCE = "probe"  # the checkpoint worker's source name for the probe


class CheckpointProbe(QObject):
    """``hear(run_dir)``: probe its latest checkpoint into the window's store."""

    heard = Signal(int)  # the step of the checkpoint now shown
    _answer = Signal(object)  # the worker's answer, carried to the GUI thread

    def __init__(self, window):
        super().__init__(window)
        self.window, self.store = window, window.store
        self.run_dir: Path | None = None
        self.step: int | None = None  # the checkpoint step of the probe on show
        self._worker: CheckpointWorker | None = None
        self._asked: int | None = None
        self._last_error = ""
        self._answer.connect(self._on_answer)
        window.worker.started.connect(lambda _info: self.forget())
        window.closing.connect(self.close)

    @property
    def busy(self) -> bool:
        """Whether an answer is awaited."""
        return self._asked is not None

    def hear(self, run_dir: str | Path) -> bool:
        """Probe ``run_dir``'s latest checkpoint (replacing an ask still waiting); False (and
        nothing asked) if it has none yet."""
        if self.run_dir != Path(run_dir):
            self.step = None  # the probe on show (if any) is another run's
        self._asked = None
        if latest_checkpoint(RunFolder(run_dir).checkpoint_dir) is None:
            return False
        if self._worker is None:
            self._worker = CheckpointWorker(self._answer.emit)
        self.run_dir = Path(run_dir)
        seconds = float(getattr(self.window.worker, "probe_seconds", 4.0))
        self._asked = self._worker.probe(SOURCE, f"{self.run_dir}:latest", seconds)
        return True

    def forget(self) -> None:
        """Show no answer to what was asked (the store shows something else now)."""
        self._asked, self.step = None, None
        if self._worker is not None:
            self._worker.forget(SOURCE)

    def close(self) -> None:
        """End the thread (the window closes); a probe in progress is finished first."""
        self._asked = None
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def _on_answer(self, answer: dict) -> None:
        if self._asked is None or answer.get("id") != self._asked:
            return  # stale: asked before a newer checkpoint, run or training
        self._asked = None
        if answer.get("error"):
            text = (f"{self.run_dir.name}: the probe clip could not be heard through its latest "
                    f"checkpoint: {answer['error']}")
            if text != self._last_error:  # said once, not at every checkpoint
                self._last_error = text
                self.window.show_notice(text)
            return
        self._last_error = ""
        step = int(answer["step"])
        self.step = step
        if answer.get("file") and self.store.info.get("probe_file") != answer["file"]:
            self.store.info = {**self.store.info, "probe_file": answer["file"]}  # names the clip
        self.store.on_probe({key: answer[key] for key in ("step", "sample_rate", "original",
                                                           "reconstruction", "file")})
        self.store.on_heavy({"step": step, "codebook": answer.get("codebook") or {}})
        self.heard.emit(step)
