"""The headless trainer: one readable step, changeable between any two steps, resumable exactly.

``Trainer.step()`` runs one optimisation step and returns a :class:`StepReport`; ``steps()`` is
the same as a generator that also honours pause and stop. Settings and commands posted to
``trainer.mailbox`` (from any thread) are served at the start of the next step, or while paused,
and come back as events carrying that step. The GUI, ``vqstudio train`` and a ``torchrun`` job all
drive this one class; it knows nothing of Qt.

Around it: :mod:`~vqstudio.train.data` (the batches), :mod:`~vqstudio.train.schedule` (the
learning rate), :mod:`~vqstudio.train.settings` and :mod:`~vqstudio.train.commands` (what the
mailbox can ask), :mod:`~vqstudio.train.state` (what a checkpoint holds),
:mod:`~vqstudio.train.report` (what a step tells), :mod:`~vqstudio.train.event_record` (the
events and results it hands out between steps).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from vqstudio.config import Config
from vqstudio.errors import UserError
from vqstudio.model import Codec
from vqstudio.model.inference import reconstruct
from vqstudio.train.balancer import Balancer
from vqstudio.train.checkpoint import save_checkpoint
from vqstudio.train.commands import run_command
from vqstudio.train.data import TrainingData
from vqstudio.train.device import cap_cpu_threads, pick_device
from vqstudio.train.event_record import EventRecord
from vqstudio.train.evaluation import codebook_figures, validation_distance
from vqstudio.train.losses import LossSuite, total
from vqstudio.train.mailbox import Mailbox
from vqstudio.train.memory_reuse import keep_freed_memory
from vqstudio.train.own_random import OwnRandom
from vqstudio.train.nonfinite import on_nonfinite
from vqstudio.train.report import StepReport, metrics_row
from vqstudio.train.rollback import BufferRollback
from vqstudio.train.run_lock import RunLock
from vqstudio.train.run_open import open_run_folder
from vqstudio.train.runfolder import RunFolder
from vqstudio.train.schedule import learning_rate
from vqstudio.train.settings import apply_setting
from vqstudio.train.state import copied, load_trainer_state, trainer_state

__all__ = ["Trainer", "StepReport", "pick_device", "cap_cpu_threads"]

# Terms whose cost is not trivial: left out of the graph while weighted 0 (see Trainer.step).
COSTLY_TERMS = ("mel_l1/", "mrstft", "complex_stft", "low_band_si_sdr", "phase_advance", "adversarial",
                "feature_matching")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Trainer(EventRecord):
    """Owns the model, the losses, the optimizers, the data and (optionally) a run folder."""

    def __init__(
        self,
        config: Config,
        run_dir: str | Path | None = None,
        *,
        device: str | None = None,
        rank: int = 0,
        world: int = 1,
        wrap=None,
        mailbox: Mailbox | None = None,
    ):
        """``run_dir`` that already holds a run is resumed (its configuration wins over
        ``config``). ``wrap`` turns the model into its distributed wrapper (DDP) when given.
        ``mailbox`` lets a driver post settings before the trainer exists (the GUI's weights)."""
        self.rank, self.world = rank, world
        self.run = RunFolder(run_dir) if run_dir is not None else None
        # One writer per run folder (train/run_lock.py): refused here, before anything is built.
        self.lock = RunLock.acquire(self.run.path) if self.run is not None and rank == 0 else None
        resuming = self.run is not None and self.run.exists()
        if resuming:
            config = self.run.load_config()
        self.config = config
        self.device = pick_device(device or config.train.device)
        if self.device.type == "cpu":
            cap_cpu_threads(config.train.cpu_threads)
            keep_freed_memory()  # ~7 % of a CPU step was page faults (train/memory_reuse.py)
        self.amp = config.train.amp and self.device.type == "cuda"
        torch.manual_seed(config.train.seed)

        self.data = TrainingData(config, rank, world)
        self._build_model(config, wrap)
        self.mailbox = mailbox if mailbox is not None else Mailbox()

        self.step_count = 0
        self.weights = config.loss.resolved_weights()
        self.base_lr = config.train.lr
        self.lr_scale = 1.0  # halved after repeated non-finite steps
        self.balancer_mode = config.loss.balancer
        self.elapsed = 0.0
        self.best_val = math.inf
        self._nonfinite_run = 0
        self._good_state: dict[str, Any] | None = None
        self._start_event_record()  # train/event_record.py
        self._last_save = time.monotonic()
        self.writer = self.events = None
        self.steering = open_run_folder(self, resuming)  # train/run_open.py
        self._random = OwnRandom(self.device)  # its steps' draws, whatever else the process does

    def _build_model(self, config: Config, wrap) -> None:
        """The codec, its losses (and discriminators), the balancer and the optimizers."""
        t = config.train
        self.model = Codec(config.model).to(self.device)
        self.losses = LossSuite(config).to(self.device)
        self.net = wrap(self.model) if wrap else self.model
        # fused: one kernel for all parameters (seed-fixed's step on the CPU: 8.1 -> 2.0 ms)
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay,
            fused=True,
        )
        self.disc_optimizer = None
        if config.loss.adversarial:
            self.disc_optimizer = torch.optim.AdamW(
                self.losses.discriminator_parameters(), lr=t.discriminator_lr, betas=tuple(t.betas),
                fused=True,
            )
        self.balancer = Balancer()
        self._rollback = BufferRollback(self.model)

    # -- the step -----------------------------------------------------------------------------

    def current_lr(self) -> float:
        return learning_rate(self.config.train, self.base_lr * self.lr_scale, self.step_count)

    def weights_now(self) -> dict[str, float]:
        """The weights in force at this step: ``self.weights``, with ``low_band_si_sdr`` at 0
        before ``loss.low_band_from_step`` (the term starts once the spectra are learned)."""
        if self.step_count >= self.config.loss.low_band_from_step or not self.weights.get("low_band_si_sdr"):
            return self.weights
        return {**self.weights, "low_band_si_sdr": 0.0}

    def _costly_unweighted(self, weights: dict[str, float]) -> list[str]:
        """Costly terms weighted 0 now: kept out of the backward pass (see :meth:`step`)."""
        return [n for n, w in weights.items() if w == 0 and n.startswith(COSTLY_TERMS)]

    def step(self) -> StepReport:
        with self._random:  # on the trainer's own random numbers (train/own_random.py)
            return self._step()

    def _step(self) -> StepReport:
        """One optimisation step; see the module docstring of :mod:`vqstudio.train.report`.

        The hot path holds no hidden work: costly terms weighted 0 are not computed (on logging
        steps they are, for the record, without a graph) unless the balancer is measuring shares;
        the only device sync is one read of a stacked tensor (the finite check, and on logging
        steps every term with it); a non-finite step (total, gradient norm, discriminator loss or
        its gradient norm) steps no optimizer and puts back every buffer the forward changed.
        """
        start = time.perf_counter()
        self.service_mailbox()
        t = self.config.train
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        next_step = self.step_count + 1
        log_now = next_step % t.log_every == 0
        share_every = self.config.loss.grad_share_every
        measure = self.balancer_mode == "shares" or bool(share_every and self.step_count % share_every == 0)
        weights = self.weights_now()
        unweighted = [] if measure else self._costly_unweighted(weights)

        batch = self.data.batch(self.step_count).to(self.device, non_blocking=True)
        for name, reason in self.data.unreadable_files():
            self.record_event("unreadable_file", file=name, reason=reason)
        self._rollback.save()
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.net(batch)
        checks = []  # scalars that must all be finite for the step to count
        if self.disc_optimizer is not None:
            # The discriminators' gradients now, their step only once the whole step is known to
            # be finite; the generator's adversarial terms below see them as they were.
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                d_loss = self.losses.discriminator_loss(batch, out.audio.detach())
            self.disc_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            d_norm = torch.nn.utils.clip_grad_norm_(self.losses.discriminator_parameters(), t.grad_clip)
            checks += [d_loss.detach(), d_norm]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            terms = self.losses.terms(out, batch, skip=() if log_now else unweighted, detach=unweighted)
        weighted = total(terms, weights)

        self.optimizer.zero_grad(set_to_none=True)
        shares = None
        if measure:
            shares = self.balancer.backward(terms, out.audio, weights, self.balancer_mode)
        else:
            weighted.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        checks = [weighted.detach(), grad_norm, *checks]
        names = list(terms) if log_now else []
        values = torch.stack([v.detach().float() for v in checks + [terms[n] for n in names]]).tolist()
        finite = all(math.isfinite(v) for v in values[: len(checks)])  # the step's one sync

        if finite:
            if self.disc_optimizer is not None:
                self.disc_optimizer.step()
            self.optimizer.step()
            self._rollback.check()
            self._nonfinite_run = 0
            self.step_count = next_step
            every = self.config.model.dead_code_replace_every
            if every and self.step_count % every == 0:
                self.replace_dead_codes(automatic=True)
        else:
            on_nonfinite(self)
            if not names:  # a skipped step reports its terms, to show which one went wrong
                names = list(terms)
                values = values[: len(checks)] + torch.stack([terms[n].detach().float() for n in names]).tolist()
        self.optimizer.zero_grad(set_to_none=True)
        if self.disc_optimizer is not None:
            self.disc_optimizer.zero_grad(set_to_none=True)

        seconds = time.perf_counter() - start
        self.elapsed += seconds
        s = self.step_count
        reported = dict(zip(names, values[len(checks):]))
        if reported:
            reported["total"] = values[0]
        report = StepReport(
            step=s,
            wall_time=time.time(),
            elapsed=self.elapsed,
            terms=reported,
            weights=dict(self.weights),
            lr=lr,
            grad_norm=values[1] if reported else math.nan,
            steps_per_second=1.0 / max(seconds, 1e-9),
            audio_seconds_per_second=self.data.audio_seconds_per_step() / max(seconds, 1e-9),
            skipped=not finite,
            grad_shares=shares,
        )
        if finite:
            self._after_good_step(report)
        report.events, report.results = self.drain()
        return report

    def _after_good_step(self, report: StepReport) -> None:
        """The cadenced work of a counted step: statistics, validation, the metrics row, and a
        checkpoint every ``checkpoint_every`` steps or ``checkpoint_minutes`` of wall clock."""
        t, s = self.config.train, self.step_count
        if s % t.heavy_every == 0:
            report.codebook = self.codebook_stats()
        if t.validate_every and s % t.validate_every == 0:
            report.validation = self.validate()
        if report.terms and self.writer is not None:
            self.writer.write(metrics_row(report))
        if t.checkpoint_every and s % t.checkpoint_every == 0:
            self._save_quietly(best=self._is_best(report.validation), reason="cadence")
        elif t.checkpoint_minutes and time.monotonic() - self._last_save >= 60 * t.checkpoint_minutes:
            self._save_quietly(best=self._is_best(report.validation), reason="autosave")

    def _save_quietly(self, **fields: Any) -> None:
        """A cadenced checkpoint that cannot be written (a full disk) is a ``failed`` event, not
        the end of the run; the next cadence tries again."""
        try:
            self.save_checkpoint(**fields)
        except (UserError, OSError) as exc:
            self._last_save = time.monotonic()
            self.record_event("failed", command="save_checkpoint", error=_one_line(exc))

    def steps(self, until: int | None = None, idle: Callable[[], None] | None = None) -> Iterator[StepReport]:
        """Step until the global step reaches ``until`` (forever if None) or the mailbox stops.

        While the mailbox is paused no step runs, but settings and commands are still served, and
        ``idle()`` (if given) is called after each serving, so a driver can hand out what they
        produced (:meth:`drain`) without waiting for a step.
        """
        while (until is None or self.step_count < until) and not self.mailbox.stopped:
            if self.mailbox.paused:
                self.wait_while_paused(idle=idle)
                continue
            yield self.step()

    def wait_while_paused(self, poll: float = 0.1, idle: Callable[[], None] | None = None) -> None:
        """Block while the mailbox is paused, serving the mailbox; logs pause and resume."""
        self.record_event("pause")
        while self.mailbox.paused and not self.mailbox.stopped:
            self.service_mailbox()
            if idle is not None:
                idle()
            self.mailbox.wait(poll)
        self.service_mailbox()
        if not self.mailbox.stopped:
            self.record_event("resume")
        if idle is not None:
            idle()

    # -- changes between steps ----------------------------------------------------------------

    def service_mailbox(self) -> None:
        """Apply every posted setting (last write wins) and serve every queued command in order;
        their events and results wait for :meth:`drain`."""
        if self.lock is not None:
            self.lock.beat()  # the heartbeat others read in trainer.lock; mostly a clock read
        self.steering.serve(self)  # control.jsonl: changes from other processes (train/steering.py)
        settings, commands = self.mailbox.take()
        for name, value in settings.items():
            apply_setting(self, name, value)
        for cmd in commands:
            result = run_command(self, cmd)
            if result is not None:
                self._results.append(result)

    def replace_dead_codes(self, automatic: bool, id: int | None = None) -> None:
        replaced = self.model.quantizer.replace_dead_codes()
        if not automatic or any(replaced):
            self.record_event("replace_dead_codes", replaced=list(replaced), automatic=automatic, id=id)

    # -- evaluation ---------------------------------------------------------------------------

    def reconstruct(self, wave: np.ndarray, levels: int | None = None) -> np.ndarray:
        """Reconstruct a mono clip ``[T]`` with the current weights, leaving training untouched
        (see :func:`vqstudio.model.inference.reconstruct`)."""
        return reconstruct(self.model, wave, levels, device=self.device, amp=self.amp)

    def validate(self) -> dict[str, float]:
        """Multi-scale log-mel distance on fixed held-back segments (lower is better)."""
        return validation_distance(self.model, self.data.validation_segments(),
                                   self.config.model.sample_rate, self.device)

    def codebook_stats(self) -> dict[str, np.ndarray]:
        return codebook_figures(self.model.quantizer)

    def _is_best(self, validation: dict[str, float] | None) -> bool:
        better = bool(validation) and validation["mel_distance"] < self.best_val
        if better:
            self.best_val = validation["mel_distance"]
        return better

    # -- state --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return trainer_state(self)

    def load_state(self, state: dict[str, Any]) -> None:
        load_trainer_state(self, state)

    def save_checkpoint(self, best: bool = False, **fields: Any) -> Path | None:
        """Write a checkpoint (rank 0 with a run folder); without one, keep it in memory.
        ``fields`` (e.g. the command ``id``, the ``reason``) go into the checkpoint event."""
        state = self.state_dict()
        if self.run is None or self.rank != 0:
            # No folder to restore from after repeated non-finite steps: keep a copy in memory.
            self._good_state = copied(state)
            return None
        path = save_checkpoint(
            self.run.checkpoint_dir, state, self.step_count, self.config.train.keep_checkpoints, best
        )
        self._last_save = time.monotonic()
        self.record_event("checkpoint", file=path.name, best=best, **fields)
        return path

    def close(self) -> None:
        self.data.close()
        for handle in (self.writer, self.events):
            if handle is not None:
                handle.close()
        self.writer = self.events = None
        if self.lock is not None:
            self.lock.release()
