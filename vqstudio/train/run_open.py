"""How a trainer takes up its run folder: create it or resume it, open the metrics file and the
event log (rank 0 writes), log how the run began, and start reading its control file."""

from __future__ import annotations

from vqstudio.train.checkpoint import latest_checkpoint, load_checkpoint
from vqstudio.train.runfolder import VALIDATION_COLUMN, EventLog, MetricsWriter, RunFolder, metric_columns
from vqstudio.train.steering import Steering


def open_run_folder(trainer, resuming: bool) -> Steering:
    """Create or resume ``trainer``'s run folder (see :class:`~vqstudio.train.trainer.Trainer`);
    a resume loads the latest checkpoint and sets aside what was logged after it. Returns the
    run's :class:`Steering` (the changes other processes ask for in ``control.jsonl``)."""
    config, run = trainer.config, trainer.run
    if run is not None and trainer.rank == 0 and not resuming:
        RunFolder.create(run.path, config)
    resumed_from = None
    if resuming:
        resumed_from = latest_checkpoint(run.checkpoint_dir)
        if resumed_from is not None:
            trainer.load_state(load_checkpoint(resumed_from, map_location=trainer.device))
    if run is None or trainer.rank != 0:
        return Steering(None, [], trainer.rank, trainer.world)
    lost, aside = run.set_aside_after(trainer.step_count) if resuming else (0, None)
    columns = metric_columns(config, [*trainer.losses.logged_parts(), VALIDATION_COLUMN])
    trainer.writer = MetricsWriter(run.metrics_path, columns)
    steering = Steering(run.path, run.read_events() if resuming else [], trainer.rank, trainer.world)
    trainer.events = EventLog(run.events_path)
    if resuming:
        trainer.record_event("resume", file=resumed_from.name if resumed_from else None, lost_steps=lost,
                             rolled_back=aside.name if aside is not None else None)
    else:
        trainer.record_event("start", preset=config.preset, device=str(trainer.device), world=trainer.world)
    for name, reason in trainer.data.skipped:
        trainer.record_event("skipped_file", file=name, reason=reason)
    if trainer.lock is not None and trainer.lock.taken_over:
        trainer.record_event("lock_taken_over", note=trainer.lock.taken_over)
    return steering
