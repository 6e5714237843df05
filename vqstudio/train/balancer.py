"""How much of the gradient each loss term sends into the model, and a balancer that sets it.

Every term that judges the reconstruction (waveform, mels, MR-STFT, adversarial ...) reaches the
model through one tensor: the decoder output ``CodecOutput.audio`` ``[B, 1, T]``. The gradient of
``weight * term`` with respect to that tensor is what the term asks the decoder to change; the
norms of those gradients, normalised to sum to 1, are the terms' **gradient shares**. A weight
says little on its own (a mel L1 at weight 1 can outpull a waveform MSE at weight 100); the share
is what the user should look at.

:class:`Balancer` does the backward pass of the whole objective in one of two modes:

- ``"static"``: ``sum(weight * term).backward()``, the ordinary weighted sum;
- ``"shares"`` (EnCodec's balancer): the weights *are* the shares. Each output-reaching term's
  gradient at the output is divided by a running (EMA) average of its norm and multiplied by
  ``weight / sum(weights) * reference_norm``; the sum is backpropagated from the output through the
  model once. A term's raw scale then no longer matters, only its weight.

Terms that do not reach the output (``codebook``, ``commitment``: they act on the encoder and the
codebooks directly) are backpropagated with their weight as they are, in both modes. The shares
mode assumes a term that reaches the output reaches the model only through it (true of every term
in :mod:`vqstudio.train.losses`).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch

from vqstudio.train.losses import total

MODES = ("static", "shares")


def reaches(term: torch.Tensor, output: torch.Tensor) -> bool:
    """Whether ``term``'s autograd graph passes through ``output`` (found by walking the graph)."""
    if not term.requires_grad:
        return False
    if term is output:
        return True
    target = output.grad_fn
    seen: set = set()
    stack = [term.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if node is target or (target is None and getattr(node, "variable", None) is output):
            return True
        stack.extend(child for child, _ in node.next_functions)
    return False


def _output_reaching(
    terms: Mapping[str, torch.Tensor], output: torch.Tensor, weights: Mapping[str, float]
) -> list[str]:
    return [n for n in weights if n in terms and reaches(terms[n], output)]


def _gradient_at(term: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(term, output, retain_graph=True)
    return grad


def _norms(grads: list[torch.Tensor]) -> list[float]:
    """Euclidean norms of ``grads``, read back with a single device sync."""
    if not grads:
        return []
    return torch.stack([torch.linalg.vector_norm(g.float()) for g in grads]).tolist()


def _normalised(norms: Mapping[str, float]) -> dict[str, float]:
    whole = sum(norms.values())
    return {n: (v / whole if whole > 0 else 0.0) for n, v in norms.items()}


def gradient_shares(
    terms: Mapping[str, torch.Tensor], output: torch.Tensor, weights: Mapping[str, float]
) -> dict[str, float]:
    """Share of the gradient norm at ``output`` ``[B, 1, T]`` of each weighted term that reaches it.

    ``||d(weight * term) / d output||`` per term, divided by their sum: the values sum to 1 (all 0
    when no term has a gradient). Terms that do not reach ``output`` are left out; a term with
    weight 0 gets 0 (and costs nothing). The graph is kept, so the step's backward can follow.
    """
    reaching = _output_reaching(terms, output, weights)
    active = [n for n in reaching if float(weights[n]) != 0]
    norms = dict.fromkeys(reaching, 0.0)
    measured = _norms([_gradient_at(terms[n], output) for n in active])
    for name, norm in zip(active, measured):
        norms[name] = abs(float(weights[name])) * norm
    return _normalised(norms)


class Balancer:
    """Backward pass of the weighted objective, ``"static"`` or ``"shares"`` (see module docs).

    ``ema_decay`` sets how slowly the running gradient norms follow (0.999: about 1000 steps);
    ``reference_norm`` is the norm the balanced gradient at the output would have if every term's
    gradient pointed the same way. The running norms are bias-corrected, so the first step is
    already balanced.
    """

    def __init__(self, ema_decay: float = 0.999, reference_norm: float = 1.0, eps: float = 1e-12):
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must be within [0, 1), not {ema_decay}")
        self.ema_decay = ema_decay
        self.reference_norm = reference_norm
        self.eps = eps
        self._sums: dict[str, float] = {}  # decayed sum of norms, per term
        self._counts: dict[str, float] = {}  # decayed count, for the bias correction
        self.last_norms: dict[str, float] = {}  # unweighted gradient norms at the output, last step

    def running_norm(self, name: str) -> float | None:
        """The bias-corrected EMA of ``name``'s gradient norm at the output, if seen."""
        if name not in self._sums:
            return None
        return self._sums[name] / self._counts[name]

    def _update(self, name: str, norm: float) -> float:
        d = self.ema_decay
        self._sums[name] = d * self._sums.get(name, 0.0) + norm
        self._counts[name] = d * self._counts.get(name, 0.0) + 1.0
        return self._sums[name] / self._counts[name]

    def backward(
        self,
        terms: Mapping[str, torch.Tensor],
        output: torch.Tensor,
        weights: Mapping[str, float],
        mode: str = "static",
        measure: bool = True,
    ) -> dict[str, float]:
        """Backpropagate the objective into the model's parameters.

        ``terms`` as from ``LossSuite.terms``, ``output`` the decoder output ``[B, 1, T]`` they were
        computed from, ``weights`` keyed by term name. Returns the gradient shares at the output of
        the gradient actually applied. They come free in ``"shares"`` mode; in ``"static"`` mode
        they cost one extra backward per term to the output, so ``measure=False`` skips them and
        returns ``{}`` (then this is just ``total(terms, weights).backward()``).
        """
        if mode not in MODES:
            raise ValueError(f"balancer mode '{mode}' is not one of {', '.join(MODES)}")
        if mode == "static":
            shares = gradient_shares(terms, output, weights) if measure else {}
            total(terms, weights).backward()
            return shares

        at_output = _output_reaching(terms, output, weights)
        active = [n for n in at_output if float(weights[n]) > 0]
        whole_weight = sum(float(weights[n]) for n in active)
        output_grad = None
        applied: dict[str, float] = {n: 0.0 for n in at_output}
        term_grads = [_gradient_at(terms[n], output) for n in active]
        self.last_norms = dict(zip(active, _norms(term_grads)))
        for name, grad in zip(active, term_grads):
            norm = self.last_norms[name]
            # A non-finite step is skipped by the trainer; it must not poison the running norm.
            running = self._update(name, norm) if math.isfinite(norm) else self.running_norm(name)
            share = float(weights[name]) / whole_weight
            scale = share * self.reference_norm / max(running or norm, self.eps)
            applied[name] = scale * norm
            output_grad = grad * scale if output_grad is None else output_grad + grad * scale

        roots, grads = [], []
        if output_grad is not None:
            roots.append(output)
            grads.append(output_grad)
        elsewhere = {n: w for n, w in weights.items() if n not in at_output}
        if any(terms[n].requires_grad for n in elsewhere if n in terms):
            roots.append(total(terms, elsewhere))
            grads.append(None)
        if roots:
            torch.autograd.backward(roots, grads)  # one pass through the model
        return _normalised(applied)

    def state_dict(self) -> dict:
        """The running norms, as plain numbers (JSON-safe) for checkpoints."""
        return {"sums": dict(self._sums), "counts": dict(self._counts)}

    def load_state_dict(self, state: Mapping) -> None:
        self._sums = {str(k): float(v) for k, v in state.get("sums", {}).items()}
        self._counts = {str(k): float(v) for k, v in state.get("counts", {}).items()}

