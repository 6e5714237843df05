"""``vqstudio train``: a new run from a preset, a resume, or a fork (``--from``), headless, also
under ``torchrun`` (rank 0 writes). SIGTERM, SIGINT and SIGHUP finish the step and save a
checkpoint; SIGUSR1 saves and goes on (``train/stopping.py``)."""

from __future__ import annotations

import os
from pathlib import Path

from vqstudio.errors import UserError


def _distributed():
    """(rank, world, wrap) under torchrun; (0, 1, None) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None, None
    import torch
    import torch.distributed as dist

    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    rank = dist.get_rank()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = None
    if backend == "nccl":
        torch.cuda.set_device(local)
        device = f"cuda:{local}"

    def wrap(model):
        from torch.nn.parallel import DistributedDataParallel

        ids = [local] if backend == "nccl" else None
        return DistributedDataParallel(model, device_ids=ids)

    return rank, world, wrap, device


def cmd_train(args) -> int:
    from vqstudio.config import DEFAULT_PRESET, load_preset
    from vqstudio.train.runfolder import RunFolder
    from vqstudio.train.stopping import StopSignals
    from vqstudio.train.trainer import Trainer

    run = RunFolder(args.run)
    overrides = list(args.set)
    if args.fork_from:  # experiments/fork.py writes NEW; it then resumes like any run
        config = _fork(args, run)
    elif run.exists():
        config = run.load_config()
        if args.preset or args.set or args.data:
            print(f"Resuming {run.path}: its config.toml wins over --preset/--set/--data.")
    else:
        config = load_preset(args.preset or DEFAULT_PRESET, overrides)
        if args.data:
            if not Path(args.data).exists():
                raise UserError(f"--data {args.data}: no such folder or manifest",
                                "give a folder of audio files, a manifest or a prepared dataset")
            config = config.with_overrides({"data.path": str(Path(args.data).resolve())})
    rank, world, wrap, dist_device = _distributed()
    # SIGTERM, SIGINT and SIGHUP finish the step and save; SIGUSR1 saves and goes on.
    with StopSignals() as signals:
        trainer = Trainer(config, run.path, device=dist_device or args.device, rank=rank, world=world,
                          wrap=wrap)
        if trainer.lock is not None and trainer.lock.taken_over:
            print(f"Note: {trainer.lock.taken_over}.", flush=True)
        try:
            return _train(trainer, run, args.steps, signals, rank, world)
        finally:
            trainer.close()
            if world > 1:
                import torch.distributed as dist

                dist.destroy_process_group()


def _fork(args, run):
    from vqstudio.experiments.fork import fork_run

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError("--from cannot fork under torchrun (every rank would write the fork)",
                        "fork first with plain `vqstudio train --from ... --run NEW --steps 0`, "
                        "then train NEW under torchrun")
    if args.preset:
        raise UserError("--preset does not go with --from: a fork starts from its parent's settings",
                        "change settings with --set section.key=value")
    data = str(Path(args.data).resolve()) if args.data else None
    if data is not None and not Path(data).exists():
        raise UserError(f"--data {args.data}: no such folder or manifest",
                        "give a folder of audio files, a manifest or a prepared dataset")
    print(fork_run(args.fork_from, run.path, list(args.set), data=data).summary, flush=True)
    return run.load_config()


def _train(trainer, run, target: int | None, signals, rank: int, world: int) -> int:
    from vqstudio.train.progress import Progress

    quiet = rank != 0
    if trainer.data.report and not quiet:
        for line in trainer.data.report.splitlines():
            print(line)
    if target is not None and trainer.step_count >= target:
        if not quiet:
            print(f"{run.path} is already at step {trainer.step_count} (asked for {target}); nothing to do.")
        return 0
    if not quiet:
        print(f"Training {trainer.config.preset or 'custom'} on {trainer.device} from step "
              f"{trainer.step_count}{f' to {target}' if target else ''}; run folder {run.path}", flush=True)
    progress = Progress(trainer.step_count, target, enabled=not quiet)
    try:
        for report in trainer.steps(until=target):
            progress.update(report)
            signals.serve(trainer, world)
    finally:
        progress.close()
    path = trainer.save_checkpoint(reason="stop" if signals.stop_signal else "end")
    if not quiet:
        where = path if path is not None else run.checkpoint_dir
        if signals.stop_signal:
            print(f"Stopped by {signals.stop_signal} at step {trainer.step_count}; checkpoint saved: {where}")
        else:
            print(f"Done at step {trainer.step_count}; checkpoint saved: {where}")
    return 0
