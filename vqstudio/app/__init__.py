"""The desktop application: window, panels, the training worker and the A/B audio player.

The only package that may import PySide6, pyqtgraph or sounddevice; everything it shows comes from
the headless engine in ``vqstudio.audio``, ``vqstudio.model`` and ``vqstudio.train``.
"""
