"""The newest checkpoint of a run folder as a model to listen through, for a reader of a run that
another process trains (the app following it): the trainer is elsewhere, so reconstructions are
made here from what it saved. Qt-free; call it off the GUI thread (loading and decoding take
time). The model is loaded again only when the newest checkpoint changed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vqstudio.errors import CheckpointError, UserError
from vqstudio.train.checkpoint import latest_checkpoint, load_checkpoint
from vqstudio.train.runfolder import RunFolder


class LatestModel:
    def __init__(self, run_dir: str | Path):
        self.run = RunFolder(run_dir)
        self.config = self.run.load_config()
        self._key: tuple[str, int, int] | None = None
        self._model = None
        self.step = 0

    def _current(self):
        path = latest_checkpoint(self.run.checkpoint_dir)
        if path is None:
            raise UserError(f"{self.run.path} has no checkpoint yet",
                            "wait for the trainer's first checkpoint (train.checkpoint_every steps)")
        st = os.stat(path)
        key = (str(path), st.st_ino, st.st_mtime_ns)
        if key != self._key:
            from vqstudio.model import Codec

            state = load_checkpoint(path)
            model = Codec(self.config.model)
            try:
                model.load_state_dict(state["model"])
            except (RuntimeError, KeyError):
                raise CheckpointError(f"{path} does not fit the model in {self.run.config_path}",
                                      "use a checkpoint from this run folder") from None
            self._model, self._key, self.step = model.eval(), key, int(state.get("step", 0))
        return self._model

    def reconstruct(self, wave: np.ndarray, levels: int | None = None) -> dict[str, Any]:
        """The answer the trainer's ``reconstruct`` command gives, from the newest checkpoint."""
        from vqstudio.model.inference import reconstruct

        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        if wave.size < self.config.model.hop:
            raise UserError(f"the clip is too short to reconstruct ({wave.size} samples)",
                            "choose a clip of at least a few milliseconds")
        model = self._current()
        audio = reconstruct(model, wave, levels)
        return {"audio": audio, "levels": levels, "step": self.step, "sample_rate": self.config.model.sample_rate}
