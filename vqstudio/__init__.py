"""VQ Studio: train, inspect and listen to residual-vector-quantized audio autoencoders.

Layers (dependencies point one way): ``app -> train -> model -> audio``; ``config`` and ``errors``
are leaves every layer may use. Only ``vqstudio.app`` imports Qt, pyqtgraph or sounddevice.
"""

from vqstudio.version import __version__  # noqa: F401 (the one place it is written)
