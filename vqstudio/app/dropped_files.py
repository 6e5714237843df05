"""What a drag or a drop on the window carries that the studio can use: the first local audio file
(one the audio reader takes, by its suffix)."""

from __future__ import annotations

from pathlib import Path

from vqstudio.audio.io import READ_SUFFIXES


def dropped_audio(event) -> Path | None:
    """The first local audio file among a drag/drop event's URLs, or None."""
    for url in event.mimeData().urls():
        if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in READ_SUFFIXES:
            return Path(url.toLocalFile())
    return None
