"""Where the shipped resources are: presets, the demo corpus and the application icon.

This module is the one way to find them. The top-level ``resources/`` folder of the repository is
their source of truth; the build (``setup.py``) copies it into the package as
``vqstudio/_resources``, so a wheel or an sdist install finds it with :mod:`importlib.resources`.
An editable install, or the clone itself on ``sys.path``, reads ``resources/`` in place.

A resource that is not there is a :class:`ResourceMissingError` naming what is missing and how to
reinstall, never an empty list.
"""

from __future__ import annotations

from importlib import resources as _importlib_resources
from pathlib import Path

from vqstudio.errors import UserError

SHIPPED_NAME = "_resources"  # the folder inside the package that the build fills
ICON_NAME = "vqstudio"
ICON_SIZES = (48, 128, 256)  # PNG sizes rendered from the SVG (scripts/render_icons.py)
DEMO_SUFFIXES = (".flac", ".wav", ".ogg", ".mp3")

REINSTALL = (
    "reinstall VQ Studio (`pip install --force-reinstall <wheel or source folder>`; "
    "in a clone, `git checkout -- resources` restores the files)"
)


class ResourceMissingError(UserError):
    """A shipped resource (presets, demo corpus, icon) that is not where the install put it."""


def resource_root() -> Path:
    """The folder holding ``presets/``, ``demo/`` and ``icons/``."""
    shipped = _importlib_resources.files("vqstudio") / SHIPPED_NAME
    if shipped.is_dir():
        # Installs are plain folders; a zipped package would need extracting, which we refuse.
        return Path(str(shipped))
    clone = Path(__file__).resolve().parent.parent / "resources"
    if clone.is_dir():
        return clone
    raise ResourceMissingError(
        f"the shipped resources are missing: neither {Path(str(shipped))} nor {clone} exists",
        REINSTALL,
    )


def presets_dir() -> Path:
    """The folder of preset ``<name>.toml`` files; never empty."""
    folder = resource_root() / "presets"
    if not any(folder.glob("*.toml")):
        raise ResourceMissingError(f"no presets in {folder}", REINSTALL)
    return folder


def demo_dir() -> Path:
    """The built-in demo corpus (a folder of audio files with its README); never empty."""
    folder = resource_root() / "demo"
    if not folder.is_dir() or not any(p.suffix.lower() in DEMO_SUFFIXES for p in folder.iterdir()):
        raise ResourceMissingError(f"the demo corpus is missing: no audio files in {folder}", REINSTALL)
    return folder


def icon_path(size: int | None = None) -> Path:
    """The application icon: the SVG, or the PNG of ``size`` pixels (one of :data:`ICON_SIZES`)."""
    if size is not None and size not in ICON_SIZES:
        raise ValueError(f"no {size} px icon; sizes are {ICON_SIZES}")
    name = f"{ICON_NAME}.svg" if size is None else f"{ICON_NAME}-{size}.png"
    path = resource_root() / "icons" / name
    if not path.is_file():
        raise ResourceMissingError(f"the application icon {path} is missing", REINSTALL)
    return path
