"""VQ Studio: train, inspect and listen to residual-vector-quantized audio autoencoders.

Layers (dependencies point one way): ``app -> train -> model -> audio``; ``config`` and ``errors``
are leaves every layer may use. Only ``vqstudio.app`` imports Qt, pyqtgraph or sounddevice.
"""

__version__ = "0.1.0"
