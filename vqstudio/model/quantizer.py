"""The quantizer kinds and the one way to build one from a configuration.

``model.quantizer`` picks the kind; every kind has the same interface (a
:class:`~vqstudio.model.residual.ResidualQuantizer`): ``forward(latent, levels)`` ->
:class:`~vqstudio.model.residual.QuantizerOutput`, ``encode`` / ``decode`` with the first ``k``
levels, ``dropout``, ``replace_dead_codes()`` and ``stats()``, so the trainer, the worker and the
Codebooks panel do not need to know which one they have.

- ``rvq``: residual VQ with learned codebooks (:mod:`vqstudio.model.rvq`; EMA, k-means
  initialisation, dead-code replacement).
- ``rvq_factorized``: DAC-style low-dimensional, l2-normalised codes with cosine lookup
  (:mod:`vqstudio.model.factorized_vq`).
- ``rfsq``: residual finite scalar quantization, an implicit grid codebook with no codebook loss
  (:mod:`vqstudio.model.fsq`).

``model.gradient_estimator`` (``straight_through`` or ``rotation``, :mod:`vqstudio.model.rotation`)
applies to the two codebook kinds; the configuration refuses ``rotation`` with ``rfsq``.
"""

from __future__ import annotations

from vqstudio.config import ModelConfig
from vqstudio.errors import ConfigError
from vqstudio.model.codebook import Codebook
from vqstudio.model.factorized_vq import FactorizedResidualVQ
from vqstudio.model.fsq import ResidualFSQ
from vqstudio.model.residual import (
    QuantizerOutput,
    ResidualQuantizer,
    dead_fraction,
    normalised_entropy,
)
from vqstudio.model.rvq import ResidualVQ

KINDS = {"rvq": ResidualVQ, "rvq_factorized": FactorizedResidualVQ, "rfsq": ResidualFSQ}

__all__ = [
    "Codebook",
    "FactorizedResidualVQ",
    "KINDS",
    "QuantizerOutput",
    "ResidualFSQ",
    "ResidualQuantizer",
    "ResidualVQ",
    "build_quantizer",
    "dead_fraction",
    "normalised_entropy",
]


def build_quantizer(config: ModelConfig) -> ResidualQuantizer:
    """The quantizer ``config.quantizer`` names, sized by ``config``."""
    kind = config.quantizer
    if kind not in KINDS:
        raise ConfigError(
            f"model.quantizer = {kind!r} is not one of {', '.join(KINDS)}",
            f"set model.quantizer to one of {', '.join(KINDS)}",
        )
    return KINDS[kind].from_config(config)
