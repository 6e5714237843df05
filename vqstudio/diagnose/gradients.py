""":func:`loss_dominance`: how the gradient at the decoder output is shared between the loss terms
(:func:`vqstudio.train.balancer.gradient_shares`), measured on segments of the diagnosed clips.

A weight says little on its own; the share is what the decoder is asked to do. One term with most
of it means the others are decoration; a weighted term near 0 % is not being trained at all.
"""

from __future__ import annotations

import numpy as np
import torch

from vqstudio.diagnose.findings import Finding
from vqstudio.diagnose.subject import NotMeasured, Subject, remedy
from vqstudio.train.balancer import gradient_shares
from vqstudio.train.losses import LossSuite

DOMINANT_SHARE = 0.7  # one term over this share of the gradient
STARVED_SHARE = 0.01  # a weighted term under this share
TARGET_SHARE = 0.1  # the share the suggested weight would give a starved term
MAX_SEGMENTS = 4
ADVERSARIAL = ("adversarial", "feature_matching")  # need the run's discriminators: not measured


def _segments(subject: Subject, length: int) -> torch.Tensor:
    """Up to :data:`MAX_SEGMENTS` segments ``[B, 1, length]``: the loudest of each clip's windows."""
    out = []
    for c in subject.clips:
        wave = c.original
        if len(wave) < length:
            continue
        starts = np.arange(0, len(wave) - length + 1, max(1, length // 2))
        energy = [float(np.mean(wave[s : s + length] ** 2)) for s in starts]
        for i in np.argsort(energy)[::-1][: max(1, MAX_SEGMENTS // len(subject.clips))]:
            out.append(wave[starts[i] : starts[i] + length])
    if not out:
        raise NotMeasured(f"no clip is as long as one training segment ({length} samples)")
    return torch.from_numpy(np.stack(out[:MAX_SEGMENTS]).astype(np.float32)).unsqueeze(1)


def measure_shares(subject: Subject) -> dict[str, float]:
    """Gradient share per output-reaching weighted term (sums to 1), the model in eval mode."""
    model, config = subject.model, subject.config
    if model is None:
        raise NotMeasured("needs the model (gradients at its output)")
    suite = LossSuite(config)
    length = max(int(config.data.segment_seconds * subject.sample_rate), suite.min_samples)
    x = _segments(subject, length).to(next(model.parameters()).device)
    weights = {k: v for k, v in config.loss.resolved_weights().items() if k not in ADVERSARIAL}
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            out = model(x)
            terms = suite.to(x.device).terms(out, x, skip=ADVERSARIAL)
            return gradient_shares(terms, out.audio, weights)
    finally:
        model.train(was_training)


def loss_dominance(subject: Subject) -> list[Finding]:
    shares = measure_shares(subject)
    weights = subject.config.loss.resolved_weights()
    evidence = {"shares": shares, "weights": {k: weights[k] for k in shares},
                "dominant_share": DOMINANT_SHARE, "starved_share": STARVED_SHARE}
    found = []
    top = max(shares, key=shares.get) if shares else None
    if top is not None and shares[top] > DOMINANT_SHARE:
        others = 1.0 - shares[top]
        halved = weights[top] * others / shares[top] if others > 0 else None
        remedies = [remedy("loss.balancer", "shares", "the weights become the terms' shares of the gradient")]
        if halved:
            remedies.append(remedy(f"loss.weights.{top}", float(f"{halved:.2g}"),
                                   f"gives {top} about half of the gradient"))
        found.append(Finding(
            id="loss_dominance/dominant", severity="warn",
            title=f"{top} takes {100 * shares[top]:.0f} % of the gradient at the decoder output",
            explanation="The other terms barely steer the decoder, whatever their weights say.",
            evidence=evidence, where={"terms": [top]}, remedies=tuple(remedies)))
    for name, share in shares.items():
        if weights.get(name, 0.0) <= 0 or share >= STARVED_SHARE:
            continue
        others = 1.0 - share
        remedies = []
        if share > 0:
            wanted = weights[name] * (TARGET_SHARE / (1 - TARGET_SHARE)) * others / share
            remedies.append(remedy(f"loss.weights.{name}", float(f"{wanted:.2g}"),
                                   f"gives {name} about {100 * TARGET_SHARE:.0f} % of the gradient"))
        remedies.append(remedy("loss.balancer", "shares", "the weights become the terms' shares of the gradient"))
        found.append(Finding(
            id=f"loss_dominance/starved/{name}", severity="warn",
            title=f"{name} is weighted {weights[name]:g} but gets {100 * share:.1f} % of the gradient",
            explanation=f"At the decoder output the other terms' gradients are so much larger that "
                        f"{name} is effectively switched off.",
            evidence=evidence, where={"terms": [name]}, remedies=tuple(remedies)))
    return found
