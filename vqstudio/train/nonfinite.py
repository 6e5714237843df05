"""What a trainer does after a step whose loss or gradient norm was not finite: put back what the
forward pass changed, count it, and after ``train.max_nonfinite`` in a row go back to the last
good state with half the learning rate."""

from __future__ import annotations

from vqstudio.train.checkpoint import latest_checkpoint, load_checkpoint


def on_nonfinite(trainer) -> None:
    trainer._rollback.restore()  # what the forward changed outside the optimizer (EMA codebooks)
    trainer._nonfinite_run += 1
    trainer.record_event("nonfinite_skip", consecutive=trainer._nonfinite_run)
    if trainer._nonfinite_run >= trainer.config.train.max_nonfinite:
        restored = restore_last_good(trainer)
        trainer.lr_scale *= 0.5
        trainer._nonfinite_run = 0
        trainer.record_event("restored", file=restored, lr_scale=trainer.lr_scale)


def restore_last_good(trainer) -> str | None:
    """The latest checkpoint (or the in-memory one without a run folder) back, keeping the halved
    learning-rate scale; returns what was restored, or None."""
    ckpt = latest_checkpoint(trainer.run.checkpoint_dir) if trainer.run is not None else None
    state = load_checkpoint(ckpt, map_location=trainer.device) if ckpt is not None else trainer._good_state
    if state is None:
        return None
    scale = trainer.lr_scale
    trainer.load_state(state)
    trainer.lr_scale = scale
    return ckpt.name if ckpt is not None else "memory"
