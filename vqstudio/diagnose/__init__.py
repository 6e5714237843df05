"""Diagnosis of a trained codec: name the distortion, point at its cause, propose the fix.

``diagnose(model_or_run, clips)`` runs the checks (one small module per family: background,
mels, gradients, alignment, codebooks, istft, levels, long_context, mos) and returns a ranked
:class:`Diagnosis` of :class:`Finding` s, each with its evidence and ``key=value`` remedies.
:mod:`~vqstudio.diagnose.report` writes it for the terminal and as one self-contained HTML page.
Qt-free; it sits beside :mod:`vqstudio.experiments`, above :mod:`vqstudio.train`.
"""

from vqstudio.diagnose.findings import Diagnosis, Finding, Listen, Remedy
from vqstudio.diagnose.runner import CHECKS, diagnose

__all__ = ["CHECKS", "Diagnosis", "Finding", "Listen", "Remedy", "diagnose"]
