"""Residual vector quantization: ``L`` levels of ``K`` codes, each level quantizing what the levels
before it left over.

Per level (:class:`Codebook`) live the codes and everything that must survive a checkpoint, as
registered buffers: the running usage count of every code, the running sum of the vectors assigned
to it (EMA mode), whether k-means initialisation has run, and a small ring of recent residuals to
draw replacement codes from. :class:`ResidualVQ` chains the levels, with optional per-level
projections between the latent (``latent_dim``) and the codes (``codebook_dim``), the
straight-through estimator, quantizer dropout and the two losses:

- ``codebook`` ("alignment"): ``||sg(r) - q||^2``, pulls the codes towards the residuals;
- ``commitment``: ``||r - sg(q)||^2``, pulls the encoder towards its codes;

each a mean over elements, summed over levels. With EMA updates the codes get no gradient (the
codebook loss is still reported, for the curves).

The EMA statistics are kept consistent with the codes at all times: a code's vector always equals
``embed_sum / cluster_size``. Anything that writes a code (k-means, dead-code replacement) writes
all three, or the next EMA update would drag the code back to its old statistics.

Distances, losses and projections run in float32 even under autocast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from vqstudio.config import ModelConfig
from vqstudio.errors import ConfigError

KMEANS_ITERATIONS = 10


# -- usage statistics -------------------------------------------------------------------------


def normalised_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Entropy of the code distribution over log K: ``[..., K]`` -> ``[...]``.

    1 means every code is used equally, 0 means one code takes everything (or nothing was used).
    """
    size = counts.shape[-1]
    counts = counts.float()
    p = counts / counts.sum(-1, keepdim=True).clamp(min=1e-12)
    h = -(p * torch.log(p.clamp(min=1e-12))).sum(-1)
    return h / math.log(size) if size > 1 else torch.zeros_like(h)


def dead_fraction(counts: torch.Tensor, threshold: float) -> torch.Tensor:
    """Share of codes whose running count is below ``threshold``: ``[..., K]`` -> ``[...]``."""
    return (counts < threshold).float().mean(-1)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


# -- one level --------------------------------------------------------------------------------


class Codebook(nn.Module):
    """``size`` codes of dimension ``dim`` with their running statistics.

    The codes are a parameter (trained by the codebook loss) or, with ``ema``, a buffer moved by
    exponential moving averages of the vectors assigned to them.
    """

    def __init__(
        self,
        size: int,
        dim: int,
        *,
        ema: bool = True,
        decay: float = 0.99,
        kmeans_init: bool = True,
        dead_threshold: float = 1.0,
        recent_size: int | None = None,
    ):
        super().__init__()
        self.size, self.dim = size, dim
        self.ema, self.decay = ema, decay
        self.dead_threshold = dead_threshold
        init = torch.randn(size, dim) / math.sqrt(dim)
        if ema:
            self.register_buffer("codebook", init)
        else:
            self.codebook = nn.Parameter(init)
        # Running (EMA) count of vectors assigned per training step: the usage statistic, and in
        # EMA mode the denominator of the codes. Zero means "never used".
        self.register_buffer("cluster_size", torch.zeros(size))
        self.register_buffer("embed_sum", torch.zeros(size, dim))
        self.register_buffer("initialised", torch.tensor(not kmeans_init))
        recent = recent_size or max(size, 256)
        self.register_buffer("recent", torch.zeros(recent, dim))
        self.register_buffer("recent_filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("recent_next", torch.zeros((), dtype=torch.long))
        self.register_buffer("batch_usage", torch.zeros(size), persistent=False)
        # `initialised` read once per change (tracked by the tensor's version counter, which any
        # in-place write bumps: k-means, load_state_dict, a trainer restoring buffers), so the hot
        # path does not sync with the GPU every step.
        self._ready: tuple[int, int, bool] | None = None

    @property
    def ready(self) -> bool:
        flag = self.initialised
        key = (id(flag), flag._version)
        if self._ready is None or self._ready[:2] != key:
            self._ready = (*key, bool(flag))
        return self._ready[2]

    @property
    def reset_count(self) -> float:
        """The running count a freshly written code starts with: alive, but only just."""
        return max(self.dead_threshold, 1e-3)

    # -- lookup ---------------------------------------------------------------------------------

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the closest code (Euclidean) for each row: ``[M, dim]`` -> ``[M]`` int64."""
        return _nearest(x, self.codebook.detach().float())

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """``[M]`` int64 -> ``[M, dim]`` float32 code vectors."""
        return F.embedding(codes, self.codebook.float())

    # -- training-time updates --------------------------------------------------------------------

    @torch.no_grad()
    def update_(self, x: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor | None = None) -> None:
        """Fold one batch of assignments into the running statistics (and, with EMA, the codes).

        ``x`` ``[M, dim]`` are the vectors this level quantized, ``codes`` ``[M]`` their codes,
        ``counts`` ``[size]`` the codes' counts if already known.
        """
        if counts is None:
            counts = torch.bincount(codes, minlength=self.size)
        counts = counts.to(x.dtype, copy=True)  # all_reduce below must not touch the caller's tensor
        if _distributed():
            dist.all_reduce(counts)
        self.batch_usage.copy_(counts)
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if not self.ema:
            return
        sums = x.new_zeros(self.size, self.dim).index_add_(0, codes, x)
        if _distributed():
            dist.all_reduce(sums)
        self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        # Only codes that received vectors move; for the others embed_sum / cluster_size would
        # give the same vector anyway, but stays exact even after their counts decay to nothing.
        fresh = self.embed_sum / self.cluster_size.clamp(min=1e-12)[:, None]
        self.codebook.copy_(torch.where((counts > 0)[:, None], fresh, self.codebook))

    @torch.no_grad()
    def remember_(self, x: torch.Tensor) -> None:
        """Keep a few rows of ``x`` ``[M, dim]`` in the ring of recent residuals."""
        capacity = self.recent.shape[0]
        m = min(x.shape[0], max(1, capacity // 8))
        pick = torch.randint(x.shape[0], (m,), device=x.device)
        slots = (self.recent_next + torch.arange(m, device=x.device)) % capacity
        self.recent.index_copy_(0, slots, x[pick].to(self.recent.dtype))
        self.recent_next.copy_((self.recent_next + m) % capacity)
        self.recent_filled.add_(m).clamp_(max=capacity)

    @torch.no_grad()
    def set_codes_(self, index: torch.Tensor, vectors: torch.Tensor, counts: torch.Tensor) -> None:
        """Write codes ``index`` ``[n]`` with ``vectors`` ``[n, dim]`` and running counts ``[n]``,
        and their running sums to match, so the next EMA update starts from the new vectors."""
        vectors = vectors.to(self.codebook.dtype)
        counts = counts.to(self.cluster_size.dtype)
        self.codebook.data[index] = vectors
        self.cluster_size[index] = counts
        self.embed_sum[index] = vectors * counts[:, None]

    @torch.no_grad()
    def kmeans_init_(self, x: torch.Tensor, iterations: int = KMEANS_ITERATIONS) -> None:
        """Set the codes to k-means centroids of ``x`` ``[M, dim]`` (Lloyd's algorithm), their
        running counts to the cluster sizes, and flag the level initialised."""
        x = x.float()
        m = x.shape[0]
        if m >= self.size:
            pick = torch.randperm(m, device=x.device)[: self.size]
        else:
            pick = torch.randint(m, (self.size,), device=x.device)
        centroids = x[pick].clone()
        for _ in range(iterations):
            codes = _nearest(x, centroids)
            counts = torch.bincount(codes, minlength=self.size).float()
            sums = torch.zeros_like(centroids).index_add_(0, codes, x)
            fresh = sums / counts.clamp(min=1)[:, None]
            centroids = torch.where((counts > 0)[:, None], fresh, centroids)
        counts = torch.bincount(_nearest(x, centroids), minlength=self.size).float()
        self.set_codes_(torch.arange(self.size, device=x.device), centroids, counts)
        self.initialised.fill_(True)
        self._broadcast_()

    @torch.no_grad()
    def replace_dead_(self, candidates: torch.Tensor | None = None) -> int:
        """Give every dead code (running count below the threshold) a new vector drawn from
        ``candidates`` ``[M, dim]`` (default: the recent residuals of this level). Returns how
        many codes were replaced."""
        if self.dead_threshold <= 0:
            return 0
        dead = torch.nonzero(self.cluster_size < self.dead_threshold).squeeze(1)
        n = dead.numel()
        if candidates is None:
            candidates = self.recent[: int(self.recent_filled)]
        m = candidates.shape[0]
        if n == 0 or m == 0:
            return 0
        if m >= n:
            vectors = candidates[torch.randperm(m, device=candidates.device)[:n]]
        else:
            # Fewer candidates than dead codes: repeat them, nudged apart so they do not tie.
            vectors = candidates[torch.randint(m, (n,), device=candidates.device)]
            scale = candidates.float().std().clamp(min=1e-6) * 1e-2
            vectors = vectors + torch.randn_like(vectors) * scale
        self.set_codes_(dead, vectors, torch.full((n,), self.reset_count, device=dead.device))
        self._broadcast_()
        return n

    def _broadcast_(self) -> None:
        # Every rank must hold the same codes: rank 0's choice wins.
        if _distributed():
            for t in (self.codebook.data, self.cluster_size, self.embed_sum, self.initialised):
                dist.broadcast(t, 0)


def _nearest(x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    # argmin ||x - c||^2 = argmin ||c||^2 - 2 x.c ; the ||x||^2 term does not change the winner.
    scores = torch.addmm(codes.pow(2).sum(1)[None, :], x.float(), codes.t(), alpha=-2.0)
    return scores.argmin(1)


# -- the residual stack -------------------------------------------------------------------------


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # [B, D, N] sum of the used levels' codewords (straight-through)
    codes: torch.Tensor  # [B, L_used, N] int64
    codebook_loss: torch.Tensor  # scalar
    commitment_loss: torch.Tensor  # scalar
    usage: torch.Tensor  # [L, K] code counts in this batch; rows of levels not run are zero
    levels_used: int


class ResidualVQ(nn.Module):
    """Residual VQ over latent frames ``[B, input_dim, N]``.

    ``dropout`` (a plain float the trainer may change live) is the probability that a batch item
    uses only its first ``k ~ U[1, L]`` levels during training.
    """

    def __init__(
        self,
        input_dim: int,
        levels: int,
        codebook_size: int,
        codebook_dim: int,
        *,
        ema: bool = True,
        ema_decay: float = 0.99,
        kmeans_init: bool = True,
        dead_code_threshold: float = 1.0,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.input_dim = input_dim
        self.num_levels = levels
        self.codebook_size = codebook_size
        self.codebook_dim = codebook_dim
        self.dead_code_threshold = dead_code_threshold
        self.dropout = float(dropout)
        project = codebook_dim != input_dim

        def proj(a: int, b: int) -> nn.Module:
            return nn.Linear(a, b) if project else nn.Identity()

        self.in_proj = nn.ModuleList(proj(input_dim, codebook_dim) for _ in range(levels))
        self.out_proj = nn.ModuleList(proj(codebook_dim, input_dim) for _ in range(levels))
        self.levels = nn.ModuleList(
            Codebook(
                codebook_size,
                codebook_dim,
                ema=ema,
                decay=ema_decay,
                kmeans_init=kmeans_init,
                dead_threshold=dead_code_threshold,
            )
            for _ in range(levels)
        )

    @classmethod
    def from_config(cls, config: ModelConfig) -> "ResidualVQ":
        return cls(
            config.latent_dim,
            config.rvq_levels,
            config.codebook_size,
            config.codebook_dim,
            ema=config.ema,
            ema_decay=config.ema_decay,
            kmeans_init=config.kmeans_init,
            dead_code_threshold=config.dead_code_threshold,
            dropout=config.quantizer_dropout,
        )

    def _check_levels(self, levels: int | None, available: int | None = None) -> int:
        top = self.num_levels if available is None else min(available, self.num_levels)
        k = top if levels is None else int(levels)
        if not 1 <= k <= top:
            raise ConfigError(f"levels = {levels} is outside 1..{top}", f"choose between 1 and {top}")
        return k

    # -- forward ----------------------------------------------------------------------------------

    def forward(self, latent: torch.Tensor, levels: int | None = None) -> QuantizerOutput:
        """Quantize ``latent`` ``[B, D, N]`` with the first ``levels`` levels (all if None).

        In training mode this updates the running statistics (and EMA codes), initialises
        codebooks by k-means on first use, and applies quantizer dropout when ``levels`` is None.
        """
        b, d, n = latent.shape
        k = self._check_levels(levels)
        with torch.autocast(latent.device.type, enabled=False):
            z = latent.float().transpose(1, 2).reshape(b * n, d)
            keep = self._dropout_mask(b, n, z.device) if levels is None else None
            residual = z
            out = torch.zeros_like(z)
            codebook_loss = z.new_zeros(())
            commitment_loss = z.new_zeros(())
            usage = z.new_zeros(self.num_levels, self.codebook_size)
            codes = []
            for i in range(k):
                level = self.levels[i]
                e = self.in_proj[i](residual)
                if self.training and not level.ready:
                    level.kmeans_init_(e.detach())
                idx = level.nearest(e.detach())
                c = level.lookup(idx)
                w = None if keep is None else keep[i]
                codebook_loss = codebook_loss + _mean_square(e.detach() - c, w)
                commitment_loss = commitment_loss + _mean_square(e - c.detach(), w)
                # Straight-through: the value is exactly the code, the gradient goes to e.
                q = self.out_proj[i](c.detach() + (e - e.detach()))
                out = out + (q if w is None else q * w)
                residual = residual - q
                usage[i] = torch.bincount(idx, minlength=self.codebook_size).float()
                if self.training:
                    level.update_(e.detach(), idx, usage[i])
                    level.remember_(e.detach())
                codes.append(idx)
            quantized = out.reshape(b, n, d).transpose(1, 2)
            codes_t = torch.stack(codes).view(k, b, n).transpose(0, 1)
        return QuantizerOutput(quantized, codes_t, codebook_loss, commitment_loss, usage, k)

    def _dropout_mask(self, b: int, n: int, device) -> torch.Tensor | None:
        """``[L, B*N, 1]`` 1/0 weights: which rows each level serves, or None when all do."""
        if not (self.training and self.dropout > 0):
            return None
        levels = self.num_levels
        per_item = torch.full((b,), levels, device=device)
        dropped = torch.rand(b, device=device) < self.dropout
        per_item = torch.where(dropped, torch.randint(1, levels + 1, (b,), device=device), per_item)
        keep = (torch.arange(levels, device=device)[:, None] < per_item[None, :]).float()
        return keep.repeat_interleave(n, dim=1)[..., None]

    # -- codes in, codes out ---------------------------------------------------------------------

    @torch.no_grad()
    def encode(self, latent: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """``[B, D, N]`` -> codes ``[B, levels, N]`` int64; touches no statistics."""
        b, d, n = latent.shape
        k = self._check_levels(levels)
        with torch.autocast(latent.device.type, enabled=False):
            residual = latent.float().transpose(1, 2).reshape(b * n, d)
            codes = []
            for i, level in enumerate(list(self.levels)[:k]):
                idx = level.nearest(self.in_proj[i](residual))
                residual = residual - self.out_proj[i](level.lookup(idx))
                codes.append(idx)
        return torch.stack(codes).view(k, b, n).transpose(0, 1)

    def decode(self, codes: torch.Tensor, levels: int | None = None) -> torch.Tensor:
        """Codes ``[B, L', N]`` -> quantized latent ``[B, D, N]`` from the first ``levels`` levels."""
        b, available, n = codes.shape
        k = self._check_levels(levels, available)
        with torch.autocast(codes.device.type, enabled=False):
            out = torch.zeros(b * n, self.input_dim, device=codes.device)
            for i in range(k):
                out = out + self.out_proj[i](self.levels[i].lookup(codes[:, i].reshape(-1)))
        return out.reshape(b, n, self.input_dim).transpose(1, 2)

    # -- maintenance and statistics ---------------------------------------------------------------

    @torch.no_grad()
    def replace_dead_codes(self, latents: torch.Tensor | None = None) -> list[int]:
        """Replace every level's dead codes; returns how many were replaced per level.

        Replacement vectors are drawn from each level's recent residuals, or, if ``latents``
        ``[B, D, N]`` are given, from the residuals those latents leave at each level.
        """
        candidates: list[torch.Tensor | None] = [None] * self.num_levels
        if latents is not None:
            b, d, n = latents.shape
            with torch.autocast(latents.device.type, enabled=False):
                residual = latents.float().transpose(1, 2).reshape(b * n, d)
                for i, level in enumerate(self.levels):
                    e = self.in_proj[i](residual)
                    candidates[i] = e
                    residual = residual - self.out_proj[i](level.lookup(level.nearest(e)))
        return [level.replace_dead_(c) for level, c in zip(self.levels, candidates)]

    @torch.no_grad()
    def stats(self) -> dict[str, torch.Tensor]:
        """Per-level code usage, on the CPU.

        ``usage`` ``[L, K]`` running counts, ``batch_usage`` ``[L, K]`` counts of the last training
        batch, ``entropy`` / ``batch_entropy`` ``[L]`` normalised (entropy / log K) of those,
        ``dead_fraction`` ``[L]`` share of codes with a running count below the threshold.
        """
        usage = torch.stack([lv.cluster_size for lv in self.levels]).float().cpu()
        batch = torch.stack([lv.batch_usage for lv in self.levels]).float().cpu()
        return {
            "usage": usage,
            "batch_usage": batch,
            "entropy": normalised_entropy(usage),
            "batch_entropy": normalised_entropy(batch),
            "dead_fraction": dead_fraction(usage, self.dead_code_threshold),
        }


def _mean_square(diff: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``diff ** 2`` over elements, counting only rows with ``weight`` ``[M, 1]`` = 1."""
    if weight is None:
        return diff.pow(2).mean()
    return (diff.pow(2) * weight).sum() / (weight.sum() * diff.shape[-1]).clamp(min=1)
