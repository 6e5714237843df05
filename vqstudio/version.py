"""The version of VQ Studio, and the code a run was made with.

``__version__`` is the one place the version is written (``pyproject.toml`` reads it from here).
:func:`version_info` adds what traces a run to its code: the git commit and whether the work tree
had uncommitted changes when run from a clone (or, in a wheel built from a clone, the commit it was
built from), and the Python and torch versions. It imports nothing of the project and not torch,
so ``vqstudio --version`` stays instant; ``setup.py`` loads it by path at build time.
"""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

__version__ = "0.1.0"

BUILD_INFO = "_build_info.json"  # written into the wheel by setup.py: the commit it was built from


def git_revision(folder: Path) -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` for the git clone at ``folder``, or None when it is not
    one (or git is missing): dirty means tracked files differ from the commit."""
    if not (folder / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(folder), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(["git", "-C", str(folder), "status", "--porcelain",
                                 "--untracked-files=no"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = bool(status.stdout.strip()) if status.returncode == 0 else None
    return {"commit": head.stdout.strip(), "dirty": dirty}


def _built_from() -> dict[str, Any] | None:
    path = Path(__file__).resolve().parent / BUILD_INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _torch_version() -> str | None:
    torch = sys.modules.get("torch")
    if torch is not None:
        return str(torch.__version__)
    from importlib import metadata  # here, not at the top: `import vqstudio` stays cheap

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def version_info() -> dict[str, Any]:
    """``version``, ``commit`` and ``dirty`` (None when unknown), ``python``, ``torch``."""
    clone = Path(__file__).resolve().parent.parent
    revision = git_revision(clone) if (clone / "pyproject.toml").is_file() else None
    revision = revision or _built_from() or {}
    return {
        "version": __version__,
        "commit": revision.get("commit"),
        "dirty": revision.get("dirty"),
        "python": platform.python_version(),
        "torch": _torch_version(),
    }


def version_text(info: dict[str, Any] | None = None) -> str:
    """One line for ``--version`` and the About box: version, commit, Python and torch."""
    info = info or version_info()
    text = f"vqstudio {info['version']}"
    if info.get("commit"):
        text += f" (commit {info['commit'][:12]}{', with uncommitted changes' if info.get('dirty') else ''})"
    text += f", Python {info['python']}, torch {info.get('torch') or 'not installed'}"
    return text
