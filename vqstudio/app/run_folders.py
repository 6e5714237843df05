"""Where runs go: the default runs folder (the per-user data folder if writable, else ./runs), a
fresh folder per new run, paths as a person reads them, and where a run resumes or stopped."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QStandardPaths


def default_runs_root() -> tuple[Path, str]:
    """Where new runs go when the user names no folder: the per-user data folder if writable,
    else ./runs. Returns (folder, a few words saying which)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)
    if base:
        root = Path(base) / "runs"
        try:
            root.mkdir(parents=True, exist_ok=True)
            probe = root / ".write-test"
            probe.write_text("")
            probe.unlink()
            return root, "the per-user data folder"
        except OSError:
            pass
    return Path.cwd() / "runs", "./runs (the per-user data folder is not writable)"


def new_run_folder(root: Path, preset: str) -> Path:
    """``root/<preset>-<timestamp>``, with a suffix if that exists already."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path = root / f"{preset or 'custom'}-{stamp}"
    n = 2
    while path.exists():
        path = root / f"{preset or 'custom'}-{stamp}-{n}"
        n += 1
    return path


def pretty_path(path: str | Path | None) -> str:
    """A path as a person reads it: the home folder as ~."""
    if path is None:
        return ""
    text, home = str(path), str(Path.home())
    return "~" + text[len(home):] if home != "/" and text.startswith(home + "/") else text


def resume_step(run_dir: Path) -> int | None:
    """The step Start resumes a run folder from (its latest checkpoint's), None without one."""
    import re

    from vqstudio.train.checkpoint import latest_checkpoint
    from vqstudio.train.runfolder import RunFolder

    path = latest_checkpoint(RunFolder(run_dir).checkpoint_dir)
    found = re.fullmatch(r"step-(\d+)\.pt", path.name) if path is not None else None
    return int(found.group(1)) if found else None


def stopped_where(run_dir: Path, step: int) -> str:
    """Where training of ``run_dir`` stopped and its last checkpoint (one line)."""
    from vqstudio.train.runfolder import RunFolder

    saved = [e for e in RunFolder(run_dir).read_events() if e.get("kind") == "checkpoint"]
    if not saved:
        return f"stopped at step {step}, but no checkpoint was saved in {run_dir}"
    last = saved[-1]
    return f"stopped at step {last['step']}; checkpoint saved in {run_dir / 'checkpoints' / last['file']}"
