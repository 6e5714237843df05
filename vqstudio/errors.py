"""Errors a user can cause, each carrying the thing at fault and how to fix it.

Everything the CLI and the GUI show as a readable notice is a :class:`UserError`: the CLI prints
``str(error)`` on one line and exits 2; the GUI shows it in a notice. Anything else is a bug.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, device or settings, with a hint on how to fix it."""

    def __init__(self, problem: str, fix: str | None = None):
        self.problem = problem
        self.fix = fix
        super().__init__(problem if not fix else f"{problem} — {fix}")


class AudioFileError(UserError):
    """An audio file that cannot be used; ``path`` names it."""

    def __init__(self, path, problem: str, fix: str | None = None):
        self.path = str(path)
        super().__init__(f"{self.path}: {problem}", fix)
        self.reason = problem


class NoAudioError(UserError):
    """A corpus with no usable audio left after skipping the bad files."""


class ConfigError(UserError):
    """A configuration, preset or override that is invalid."""


class CheckpointError(UserError):
    """A checkpoint that is missing, corrupt or refused for safety."""


class DeviceError(UserError):
    """A compute or audio device that is missing or unusable."""
