"""The headless trainer: one readable step, changeable between any two steps, resumable exactly.

``Trainer.step()`` runs one optimisation step and returns a :class:`StepReport`; ``steps()`` is
the same as a generator. Settings and commands posted to ``trainer.mailbox`` (from any thread)
take effect at the start of the next step and come back as events carrying that step. The GUI,
``vqstudio train`` and a ``torchrun`` job all drive this one class; it knows nothing of Qt.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from vqstudio.audio.corpus import SegmentSampler, scan_corpus
from vqstudio.config import DEMO_DIR, Config
from vqstudio.errors import ConfigError, DeviceError
from vqstudio.model import Codec
from vqstudio.train.balancer import Balancer
from vqstudio.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from vqstudio.train.losses import LossSuite, total
from vqstudio.train.mailbox import Command, Mailbox
from vqstudio.train.runfolder import EventLog, MetricsWriter, RunFolder, metric_columns, weight_column

VALIDATION_COLUMN = "val/mel_distance"
VALIDATION_SEGMENTS = 8


@dataclass
class StepReport:
    """What one step did. ``terms`` is filled on logging steps (every ``train.log_every``)."""

    step: int  # the global step count after this step (1 after the first)
    wall_time: float
    elapsed: float  # seconds spent training in this run, across resumes
    terms: dict[str, float]
    weights: dict[str, float]
    lr: float
    grad_norm: float
    steps_per_second: float
    audio_seconds_per_second: float
    skipped: bool = False  # the step was non-finite and changed nothing
    codebook: dict[str, np.ndarray] | None = None  # usage [L, K], entropy [L], dead_fraction [L]
    grad_shares: dict[str, float] | None = None
    validation: dict[str, float] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)  # e.g. reconstructions


def _cloned(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.detach().clone()
    if isinstance(value, dict):
        return {k: _cloned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cloned(v) for v in value]
    return value


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "CUDA was asked for but no CUDA GPU is usable here",
            "use --device cpu, or install a CUDA build of torch (see README)",
        )
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("Apple MPS was asked for but is not available", "use --device cpu")
    return torch.device(name)


def cap_cpu_threads(requested: int = 0) -> int:
    """Leave one core free for a GUI unless told otherwise; returns the thread count set."""
    threads = requested or max(1, (os.cpu_count() or 2) - 1)
    torch.set_num_threads(threads)
    return threads


class Trainer:
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
    ):
        """``run_dir`` that already holds a run is resumed (its configuration wins over
        ``config``). ``wrap`` turns the model into its distributed wrapper (DDP) when given."""
        self.rank, self.world = rank, world
        self.run = RunFolder(run_dir) if run_dir is not None else None
        resuming = self.run is not None and self.run.exists()
        if resuming:
            config = self.run.load_config()
        self.config = config
        self.device = pick_device(device or config.train.device)
        if self.device.type == "cpu":
            cap_cpu_threads(config.train.cpu_threads)
        self.amp = config.train.amp and self.device.type == "cuda"

        torch.manual_seed(config.train.seed)
        sr = config.model.sample_rate
        data_dir = Path(config.data.path) if config.data.path else DEMO_DIR
        corpus = scan_corpus(data_dir, sr)
        self.corpus_report = corpus.report(config.data.segment_seconds)
        train_part, val_part = corpus.split(config.data.val_fraction, config.data.seed)
        self.train_corpus, self.val_corpus = train_part, val_part
        segment = int(round(config.data.segment_seconds * sr))
        self.segment_samples = segment
        self.sampler = SegmentSampler(train_part, sr, segment, config.data.seed)
        self.val_sampler = SegmentSampler(val_part, sr, segment, config.data.seed + 1)
        self._val_batch: torch.Tensor | None = None

        self.model = Codec(config.model).to(self.device)
        self.losses = LossSuite(config).to(self.device)
        self.net = wrap(self.model) if wrap else self.model
        t = config.train
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=t.lr, betas=tuple(t.betas), weight_decay=t.weight_decay
        )
        self.disc_optimizer = None
        if config.loss.adversarial:
            self.disc_optimizer = torch.optim.AdamW(
                self.losses.discriminator_parameters(), lr=t.discriminator_lr, betas=tuple(t.betas)
            )
        self.balancer = Balancer()
        self.mailbox = Mailbox()

        self.step_count = 0
        self.weights = config.loss.resolved_weights()
        self.base_lr = t.lr
        self.lr_scale = 1.0  # halved after repeated non-finite steps
        self.balancer_mode = config.loss.balancer
        self.elapsed = 0.0
        self.best_val = math.inf
        self._nonfinite_run = 0
        self._good_state: dict[str, Any] | None = None
        self._pending_events: list[dict[str, Any]] = []
        self._results: list[dict[str, Any]] = []

        self.writer = self.events = None
        if self.run is not None and rank == 0:
            if not resuming:
                RunFolder.create(self.run.path, config)
        resumed_from = None
        if resuming:
            ckpt = latest_checkpoint(self.run.checkpoint_dir)
            if ckpt is not None:
                self.load_state(load_checkpoint(ckpt, map_location=self.device))
                resumed_from = ckpt
        if self.run is not None and rank == 0:
            parts = self.losses.logged_parts() if hasattr(self.losses, "logged_parts") else []
            columns = metric_columns(config, [*parts, VALIDATION_COLUMN])
            self.writer = MetricsWriter(
                self.run.metrics_path, columns, self.step_count if resuming else None
            )
            self.events = EventLog(self.run.events_path)
            if resuming:
                self._event("resume", file=resumed_from.name if resumed_from else None)
            else:
                self._event("start", preset=config.preset, device=str(self.device))
            for name, reason in corpus.skipped:
                self._event("skipped_file", file=name, reason=reason)

    # -- the step -----------------------------------------------------------------------------

    def current_lr(self) -> float:
        t, s = self.config.train, self.step_count
        lr = self.base_lr * self.lr_scale
        if t.warmup_steps and s < t.warmup_steps:
            lr *= (s + 1) / t.warmup_steps
        if t.schedule == "cosine":
            progress = min(1.0, s / max(1, t.total_steps))
            lr *= 0.5 * (1 + math.cos(math.pi * progress))
        elif t.schedule == "exponential":
            lr *= t.lr_gamma**s
        return lr

    def step(self) -> StepReport:
        start = time.perf_counter()
        self.service_mailbox()
        t = self.config.train
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr

        batch = self.sampler.batch(self.step_count, self.config.data.batch_size, self.rank, self.world)
        batch = batch.to(self.device, non_blocking=True)
        buffers = {k: v.clone() for k, v in self.model.named_buffers()}
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            out = self.net(batch)
        if self.disc_optimizer is not None:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                d_loss = self.losses.discriminator_loss(batch, out.audio.detach())
            self.disc_optimizer.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(self.losses.discriminator_parameters(), t.grad_clip)
            self.disc_optimizer.step()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            terms = self.losses.terms(out, batch)
        weighted = total(terms, self.weights)

        share_every = self.config.loss.grad_share_every
        measure = self.balancer_mode == "shares" or (share_every and self.step_count % share_every == 0)
        self.optimizer.zero_grad(set_to_none=True)
        shares = None
        if measure:
            shares = self.balancer.backward(terms, out.audio, self.weights, self.balancer_mode)
        else:
            weighted.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip)
        finite = bool(torch.isfinite(weighted) & torch.isfinite(grad_norm))  # one sync a step

        skipped = not finite
        if finite:
            self.optimizer.step()
            self._nonfinite_run = 0
            self.step_count += 1
            every = self.config.model.dead_code_replace_every
            if every and self.step_count % every == 0:
                self._replace_dead_codes(automatic=True)
        else:
            self._on_nonfinite(buffers)
        self.optimizer.zero_grad(set_to_none=True)

        seconds = time.perf_counter() - start
        self.elapsed += seconds
        s = self.step_count
        log_now = finite and s % t.log_every == 0
        report = StepReport(
            step=s,
            wall_time=time.time(),
            elapsed=self.elapsed,
            terms={},
            weights=dict(self.weights),
            lr=lr,
            grad_norm=float(grad_norm) if log_now or skipped else math.nan,
            steps_per_second=1.0 / max(seconds, 1e-9),
            audio_seconds_per_second=batch.shape[0] * batch.shape[-1] / self.config.model.sample_rate / max(seconds, 1e-9) * self.world,
            skipped=skipped,
            grad_shares=shares,
        )
        if log_now or skipped:
            report.terms = {k: float(v.detach()) for k, v in terms.items()}
            report.terms["total"] = float(weighted.detach())
        if finite and s % t.heavy_every == 0:
            report.codebook = self.codebook_stats()
        if finite and t.validate_every and s % t.validate_every == 0:
            report.validation = self.validate()
        if log_now and self.writer is not None:
            self._write_metrics(report)
        if finite and t.checkpoint_every and s % t.checkpoint_every == 0:
            self.save_checkpoint(best=self._is_best(report.validation))
        report.events, self._pending_events = self._pending_events, []
        report.results, self._results = self._results, []
        return report

    def steps(self, until: int | None = None) -> Iterator[StepReport]:
        """Step until the global step reaches ``until`` (forever if None) or the mailbox stops.

        While the mailbox is paused no step runs, but settings and commands are still served.
        """
        while (until is None or self.step_count < until) and not self.mailbox.stopped:
            if self.mailbox.paused:
                self.wait_while_paused()
                continue
            yield self.step()

    def wait_while_paused(self, poll: float = 0.1) -> None:
        """Block while the mailbox is paused, serving the mailbox; logs pause and resume."""
        self._event("pause")
        while self.mailbox.paused and not self.mailbox.stopped:
            self.mailbox.wait(poll)
            self.service_mailbox()
        self._event("resume")

    # -- changes between steps ----------------------------------------------------------------

    def service_mailbox(self) -> list[dict[str, Any]]:
        """Apply everything posted to the mailbox; returns the events it produced."""
        settings, commands = self.mailbox.take()
        before = len(self._pending_events)
        for name, value in settings.items():
            self._apply_setting(name, value)
        for cmd in commands:
            self._run_command(cmd)
        return self._pending_events[before:]

    def _apply_setting(self, name: str, value: Any) -> None:
        if name == "weights":
            changes = {}
            for term, weight in value.items():
                if term not in self.weights:
                    self._event("refused", setting=f"weight {term}", reason="unknown loss term")
                    continue
                if not math.isfinite(weight) or weight < 0:
                    self._event("refused", setting=f"weight {term}", reason=f"{weight} is not >= 0")
                    continue
                if weight != self.weights[term]:
                    changes[term] = [self.weights[term], weight]
                    self.weights[term] = weight
            if changes:
                self._event("weights", changes=changes)
        elif name == "lr":
            value = float(value)
            if value > 0 and math.isfinite(value):
                old, self.base_lr, self.lr_scale = self.base_lr, value, 1.0
                self._event("lr", old=old, new=value)
            else:
                self._event("refused", setting="lr", reason=f"{value} is not > 0")
        elif name == "balancer":
            if value in ("static", "shares"):
                if value != self.balancer_mode:
                    self._event("balancer", old=self.balancer_mode, new=value)
                    self.balancer_mode = value
            else:
                self._event("refused", setting="balancer", reason=f"unknown mode {value!r}")
        elif name == "quantizer_dropout":
            value = float(value)
            if 0.0 <= value <= 1.0:
                old = self.model.quantizer.dropout
                self.model.quantizer.dropout = value
                self._event("quantizer_dropout", old=old, new=value)
            else:
                self._event("refused", setting="quantizer_dropout", reason=f"{value} not in 0..1")

    def _run_command(self, cmd: Command) -> None:
        if cmd.name == "replace_dead_codes":
            self._replace_dead_codes(automatic=False, id=cmd.id)
        elif cmd.name == "save_checkpoint":
            path = self.save_checkpoint()
            if path is None:
                self._event("refused", setting="save_checkpoint", reason="no run folder", id=cmd.id)
        elif cmd.name == "validate":
            self._results.append({"kind": "validation", "id": cmd.id, **self.validate()})
        elif cmd.name == "reconstruct":
            wave = np.asarray(cmd.args["wave"], dtype=np.float32)
            levels = cmd.args.get("levels")
            audio = self.reconstruct(wave, levels)
            self._results.append(
                {"kind": "reconstruction", "id": cmd.id, "audio": audio, "levels": levels,
                 "step": self.step_count, "tag": cmd.args.get("tag")}
            )

    def _replace_dead_codes(self, automatic: bool, id: int | None = None) -> None:
        replaced = self.model.quantizer.replace_dead_codes()
        if not automatic or any(replaced):
            self._event("replace_dead_codes", replaced=list(replaced), automatic=automatic, id=id)

    def _on_nonfinite(self, buffers: dict[str, torch.Tensor]) -> None:
        # Undo what the forward pass changed outside the optimizer (EMA codebooks, usage counts).
        with torch.no_grad():
            for name, buf in self.model.named_buffers():
                buf.copy_(buffers[name])
        self._nonfinite_run += 1
        self._event("nonfinite_skip", consecutive=self._nonfinite_run)
        if self._nonfinite_run >= self.config.train.max_nonfinite:
            restored = self._restore_last_good()
            self.lr_scale *= 0.5
            self._nonfinite_run = 0
            self._event("restored", file=restored, lr_scale=self.lr_scale)

    def _restore_last_good(self) -> str | None:
        if self.run is not None:
            ckpt = latest_checkpoint(self.run.checkpoint_dir)
            if ckpt is not None:
                scale = self.lr_scale
                self.load_state(load_checkpoint(ckpt, map_location=self.device))
                self.lr_scale = scale
                return ckpt.name
        if self._good_state is not None:
            scale = self.lr_scale
            self.load_state(self._good_state)
            self.lr_scale = scale
            return "memory"
        return None

    # -- evaluation ---------------------------------------------------------------------------

    @torch.no_grad()
    def reconstruct(self, wave: np.ndarray, levels: int | None = None) -> np.ndarray:
        """Reconstruct a mono clip ``[T]`` with the current weights, leaving training untouched
        (eval mode: no EMA update, no dropout, no random numbers drawn)."""
        was_training = self.model.training
        self.model.eval()
        try:
            x = torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)).to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                out = self.model(x.view(1, 1, -1), levels=levels)
            return out.audio.float().view(-1).cpu().numpy()
        finally:
            self.model.train(was_training)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Multi-scale log-mel distance on fixed held-back segments (lower is better)."""
        from vqstudio.audio.metrics import mel_distance

        if self._val_batch is None:
            self._val_batch = self.val_sampler.fixed_segments(VALIDATION_SEGMENTS)
        was_training = self.model.training
        self.model.eval()
        try:
            x = self._val_batch.to(self.device)
            out = self.model(x)
            ref = x.view(x.shape[0], -1).cpu().numpy()
            est = out.audio.float().view(x.shape[0], -1).cpu().numpy()
        finally:
            self.model.train(was_training)
        sr = self.config.model.sample_rate
        value = float(np.mean([mel_distance(r, e, sr) for r, e in zip(ref, est)]))
        return {"mel_distance": value}

    def codebook_stats(self) -> dict[str, np.ndarray]:
        stats = self.model.quantizer.stats()
        return {k: v.detach().float().cpu().numpy() if torch.is_tensor(v) else np.asarray(v)
                for k, v in stats.items()}

    def _is_best(self, validation: dict[str, float] | None) -> bool:
        if not validation:
            return False
        if validation["mel_distance"] < self.best_val:
            self.best_val = validation["mel_distance"]
            return True
        return False

    # -- state --------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = {
            "format": 1,
            "step": self.step_count,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "weights": dict(self.weights),
            "base_lr": self.base_lr,
            "lr_scale": self.lr_scale,
            "balancer_mode": self.balancer_mode,
            "balancer": self.balancer.state_dict(),
            "quantizer_dropout": float(self.model.quantizer.dropout),
            "elapsed": self.elapsed,
            "best_val": self.best_val,
            "rng_torch": torch.get_rng_state(),
            "config": self.config.to_toml(),
        }
        if torch.cuda.is_available() and self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.disc_optimizer is not None:
            state["discriminators"] = self.losses.discriminator_state_dict()
            state["disc_optimizer"] = self.disc_optimizer.state_dict()
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        try:
            self.model.load_state_dict(state["model"])
        except RuntimeError as exc:
            raise ConfigError(
                f"checkpoint does not fit this model ({str(exc).splitlines()[0][:160]})",
                "load it with the configuration it was trained with (its run folder's config.toml)",
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_count = int(state["step"])
        self.weights.update(state.get("weights", {}))
        self.base_lr = float(state.get("base_lr", self.base_lr))
        self.lr_scale = float(state.get("lr_scale", 1.0))
        self.balancer_mode = state.get("balancer_mode", self.balancer_mode)
        if "balancer" in state:
            self.balancer.load_state_dict(state["balancer"])
        self.model.quantizer.dropout = float(state.get("quantizer_dropout", self.model.quantizer.dropout))
        self.elapsed = float(state.get("elapsed", 0.0))
        self.best_val = float(state.get("best_val", math.inf))
        if "rng_torch" in state:
            torch.set_rng_state(state["rng_torch"].cpu())
        if "rng_cuda" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng_cuda"].cpu(), self.device)
        if self.disc_optimizer is not None and "discriminators" in state:
            self.losses.load_discriminator_state_dict(state["discriminators"])
            self.disc_optimizer.load_state_dict(state["disc_optimizer"])

    def save_checkpoint(self, best: bool = False) -> Path | None:
        """Write a checkpoint (rank 0 with a run folder); without one, keep it in memory."""
        state = self.state_dict()
        if self.run is None or self.rank != 0:
            # No folder to restore from after repeated non-finite steps: keep a copy in memory.
            self._good_state = _cloned(state)
            return None
        path = save_checkpoint(
            self.run.checkpoint_dir, state, self.step_count, self.config.train.keep_checkpoints, best
        )
        self._event("checkpoint", file=path.name, best=best)
        return path

    # -- bookkeeping --------------------------------------------------------------------------

    def _event(self, kind: str, **fields: Any) -> None:
        if self.events is not None:
            event = self.events.write(kind, self.step_count, **fields)
        else:
            event = {"kind": kind, "step": self.step_count, "time": time.time(), **fields}
        self._pending_events.append(event)

    def log_event(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Record an event from the driving loop (pause, resume, stop) at the current step."""
        self._event(kind, **fields)
        return self._pending_events.pop()

    def _write_metrics(self, report: StepReport) -> None:
        row: dict[str, Any] = {
            "step": report.step,
            "wall_time": f"{report.wall_time:.3f}",
            "elapsed": report.elapsed,
            "lr": report.lr,
            "grad_norm": report.grad_norm,
        }
        row.update(report.terms)
        row.update({weight_column(k): v for k, v in report.weights.items()})
        if report.validation:
            row[VALIDATION_COLUMN] = report.validation["mel_distance"]
        self.writer.write(row)

    def close(self) -> None:
        for handle in (self.writer, self.events):
            if handle is not None:
                handle.close()
        self.writer = self.events = None
