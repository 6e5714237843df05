"""Experiments across runs: fork a run with settings changed, compare runs and checkpoints.

Qt-free; above ``train`` in the layering (experiments may import train, model, audio, config and
errors; nothing below imports experiments). The app and the CLI are its clients.
"""
