"""Linux desktop integration: ``vqstudio install-desktop`` puts VQ Studio in the applications menu.

It writes a desktop entry (freedesktop Desktop Entry Specification, version 1.4) to
``$XDG_DATA_HOME/applications/vqstudio.desktop`` and the icon, as PNGs and the SVG, into
``$XDG_DATA_HOME/icons/hicolor/<size>/apps/``; ``--uninstall`` removes exactly those files. The
entry starts this very interpreter (``python -m vqstudio app``), so it works from a virtual
environment, a pipx install or a clone alike, and passes the files a user opens with it on.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from vqstudio.atomic import atomic_path, atomic_write_text
from vqstudio.errors import UserError
from vqstudio.resources import ICON_NAME, ICON_SIZES, icon_path

DESKTOP_ID = "vqstudio"  # the entry's file name and the icon name; the app's desktopFileName
MIME_TYPES = ("audio/wav", "audio/x-wav", "audio/flac", "audio/ogg", "audio/mpeg")
# Characters that oblige an Exec argument to be quoted (Desktop Entry Specification, "Exec key").
_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def data_home() -> Path:
    """``$XDG_DATA_HOME``, or ``~/.local/share`` when it is unset or not absolute (as the spec says)."""
    value = os.environ.get("XDG_DATA_HOME", "")
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / ".local" / "share"


def exec_argument(arg: str) -> str:
    """One argument of an Exec line: quoted where needed, then escaped as a desktop-file string."""
    if any(c in _RESERVED for c in arg):
        inner = "".join("\\" + c if c in '"`$\\' else c for c in arg)
        arg = f'"{inner}"'
    # Exec is also a string value: its backslashes are escaped once more, and % is a field code.
    return arg.replace("\\", "\\\\").replace("%", "%%")


def desktop_entry(python: str | None = None) -> str:
    """The text of ``vqstudio.desktop`` for the interpreter ``python`` (default: this one)."""
    python = python or sys.executable
    command = " ".join(exec_argument(a) for a in (python, "-m", "vqstudio", "app"))
    lines = [
        "[Desktop Entry]",
        "Type=Application",
        "Version=1.4",  # the newest that desktop-file-validate 0.26 (Debian 12) knows
        "Name=VQ Studio",
        "GenericName=Audio codec workbench",
        "Comment=Train residual-VQ audio autoencoders, watch every loss and listen to the result",
        f"Exec={command} %F",
        f"TryExec={exec_argument(python)}",
        f"Icon={ICON_NAME}",
        "Terminal=false",
        "Categories=AudioVideo;Audio;",
        "Keywords=RVQ;VQ-VAE;codec;audio;training;",
        "MimeType=" + "".join(m + ";" for m in MIME_TYPES),
        f"StartupWMClass={DESKTOP_ID}",
        "",
    ]
    return "\n".join(lines)


def installed_files(home: Path | None = None) -> list[Path]:
    """Every file ``install`` writes, the desktop entry first."""
    home = home or data_home()
    icons = home / "icons" / "hicolor"
    files = [home / "applications" / f"{DESKTOP_ID}.desktop"]
    files += [icons / f"{s}x{s}" / "apps" / f"{ICON_NAME}.png" for s in ICON_SIZES]
    files.append(icons / "scalable" / "apps" / f"{ICON_NAME}.svg")
    return files


def install(home: Path | None = None, python: str | None = None) -> list[Path]:
    """Write the desktop entry and the icons; returns the files written."""
    if not sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        raise UserError("install-desktop writes a freedesktop (Linux) menu entry",
                        "on macOS and Windows start VQ Studio with `vqstudio app`")
    home = home or data_home()
    entry, *icons = installed_files(home)
    sources = [icon_path(s) for s in ICON_SIZES] + [icon_path()]
    try:
        for source, target in zip(sources, icons):
            with atomic_path(target) as tmp:
                shutil.copyfile(source, tmp)
        atomic_write_text(entry, desktop_entry(python))
    except OSError as exc:
        raise UserError(f"cannot write the desktop entry under {home} ({exc.strerror})",
                        "check that the folder is writable, or set XDG_DATA_HOME") from None
    _refresh_caches(home)
    return [entry, *icons]


def uninstall(home: Path | None = None) -> list[Path]:
    """Remove what ``install`` wrote; returns the files that were there."""
    home = home or data_home()
    removed = []
    for path in installed_files(home):
        if path.is_file():
            path.unlink()
            removed.append(path)
    _refresh_caches(home)
    return removed


def _refresh_caches(home: Path) -> None:
    # Menus pick new entries up without these on most desktops; refresh where the tools exist.
    for command in (["update-desktop-database", "-q", str(home / "applications")],
                    ["gtk-update-icon-cache", "-q", "-t", str(home / "icons" / "hicolor")]):
        if shutil.which(command[0]) and Path(command[-1]).is_dir():
            subprocess.run(command, capture_output=True, timeout=30, check=False)
