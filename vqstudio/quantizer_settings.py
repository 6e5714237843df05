"""Which quantizer settings (``model.quantizer``, ``model.gradient_estimator``, ``model.fsq_levels``)
work together: the configuration's validation calls :func:`check_quantizer`, which refuses the
combinations that cannot work and names the fix. Torch-free, like the configuration.
"""

from __future__ import annotations

import math
from typing import Callable

QUANTIZERS = ("rvq", "rvq_factorized", "rfsq")  # built by vqstudio/model/quantizer.py
GRADIENT_ESTIMATORS = ("straight_through", "rotation")


def check_quantizer(m, bad: Callable[[str, str], None]) -> None:
    """Refuse, through ``bad(problem, fix)``, the quantizer settings of ``m`` (a ModelConfig) that
    cannot work together."""
    if m.quantizer not in QUANTIZERS:
        bad(f"model.quantizer = {m.quantizer!r} is not one of {', '.join(QUANTIZERS)}",
            f"set model.quantizer to one of {', '.join(QUANTIZERS)}")
    if m.gradient_estimator not in GRADIENT_ESTIMATORS:
        bad(f"model.gradient_estimator = {m.gradient_estimator!r} is not one of "
            f"{', '.join(GRADIENT_ESTIMATORS)}",
            f"set model.gradient_estimator to one of {', '.join(GRADIENT_ESTIMATORS)}")
    if m.quantizer == "rfsq":
        if m.gradient_estimator != "straight_through":
            bad("model.gradient_estimator = 'rotation' needs a codebook to rotate towards, and "
                "rfsq rounds to a grid (its rounding passes the gradient straight through)",
                'set model.gradient_estimator = "straight_through", or use model.quantizer = '
                '"rvq" or "rvq_factorized" for the rotation trick')
        if not m.fsq_levels or any(level < 3 for level in m.fsq_levels):
            bad(f"model.fsq_levels = {m.fsq_levels} needs at least one dimension, each with 3 or "
                "more values", "use e.g. [8, 8, 4] (256 codes) or [8, 5, 5, 5] (1000 codes)")
        if math.prod(m.fsq_levels) != m.codebook_size:
            bad(f"model.fsq_levels = {m.fsq_levels} give {math.prod(m.fsq_levels)} codes, but "
                f"model.codebook_size = {m.codebook_size}",
                f"set model.codebook_size = {math.prod(m.fsq_levels)}, or model.fsq_levels = "
                f"{suggest_fsq_levels(m.codebook_size)}")
    if m.quantizer == "rvq_factorized" and m.codebook_dim >= m.latent_dim:
        bad(f"model.quantizer = 'rvq_factorized' wants low-dimensional codes, but model.codebook_dim "
            f"= {m.codebook_dim} is not below model.latent_dim = {m.latent_dim}",
            "set model.codebook_dim = 8 (as DAC does)")


def suggest_fsq_levels(codebook_size: int) -> str:
    """FSQ levels whose product is ``codebook_size`` (values per dimension of 3..8 where it
    factors so), as TOML; a sentence when it does not factor into such values."""
    for dims in range(1, 12):
        best = _factor(codebook_size, dims, 8)
        if best:
            return "[" + ", ".join(str(v) for v in best) + "]"
    return f"levels of 3..8 whose product is {codebook_size} (that size has no such factors)"


def _factor(n: int, dims: int, largest: int) -> list[int] | None:
    if dims == 1:
        return [n] if 3 <= n <= largest else None
    for v in range(min(n, largest), 2, -1):
        if n % v == 0:
            rest = _factor(n // v, dims - 1, v)
            if rest:
                return [v, *rest]
    return None
