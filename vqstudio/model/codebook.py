"""One learned codebook: ``size`` codes of dimension ``dim`` and the running statistics that must
survive a checkpoint, as registered buffers: the running usage count of every code, the running sum
of the vectors assigned to it (EMA mode), whether k-means initialisation has run, and a small ring
of recent inputs to draw replacement codes from.

The EMA statistics are kept consistent with the codes at all times: a code's vector always equals
``embed_sum / cluster_size``. Anything that writes a code (k-means, dead-code replacement) writes
all three, or the next EMA update would drag the code back to its old statistics.

With ``cosine`` (the factorized kind, :mod:`vqstudio.model.factorized_vq`) the lookup compares
directions: inputs and codes are l2-normalised before the nearest code is chosen, and
:meth:`Codebook.lookup` returns unit vectors. The statistics are the same; the stored vectors are
normalised when read.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

KMEANS_ITERATIONS = 10


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
        cosine: bool = False,
    ):
        super().__init__()
        self.size, self.dim = size, dim
        self.cosine = cosine
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

    def vectors(self) -> torch.Tensor:
        """The codes as they are looked up ``[size, dim]`` float32 (unit length with ``cosine``)."""
        codes = self.codebook.float()
        return F.normalize(codes, dim=1) if self.cosine else codes

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """Index of the closest code for each row ``[M, dim]`` -> ``[M]`` int64: Euclidean, or with
        ``cosine`` the largest cosine similarity (Euclidean between unit vectors)."""
        x = F.normalize(x.float(), dim=1) if self.cosine else x
        return _nearest(x, self.vectors().detach())

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """``[M]`` int64 -> ``[M, dim]`` float32 code vectors."""
        return F.embedding(codes, self.vectors())

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
