"""VQ Studio installed as a user installs it, away from the clone.

The sdist is built from a copy of the sources, the wheel from that sdist, and the wheel installed
into a fresh virtual environment that borrows this environment's packages (torch, Qt) through a
``.pth`` line, so nothing is downloaded. That line adds a plain folder to ``sys.path``: the
editable install's import hook living there is not run, and the test asserts that ``vqstudio`` is
imported from the new environment. Every command runs from a folder outside the repository, with
spaces and non-ASCII characters in HOME, the run folder and the data folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import soundfile as sf

from helpers import tiny_sets

ROOT = Path(__file__).resolve().parent.parent
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "vqstudio", "resources")
PRESETS = sorted(p.stem for p in (ROOT / "resources" / "presets").glob("*.toml"))
DEMO = sorted(p.name for p in (ROOT / "resources" / "demo").iterdir())
ICONS = sorted(p.name for p in (ROOT / "resources" / "icons").iterdir())


def _run(cmd, cwd, env, timeout=240):
    return subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _ok(result):
    assert result.returncode == 0, f"{result.args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _build(hook: str, source: Path, out: Path) -> Path:
    """Run one PEP 517 hook of the setuptools backend in ``source`` (no isolation, no network)."""
    out.mkdir(parents=True, exist_ok=True)
    code = f"import sys; from setuptools import build_meta; print(build_meta.{hook}(sys.argv[1]))"
    result = _run([sys.executable, "-c", code, out], cwd=source, env=_clean_env())
    return out / _ok(result).strip().splitlines()[-1]


def _clean_env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VQSTUDIO_CACHE", "XDG_CACHE_HOME",
                        "XDG_DATA_HOME", "VIRTUAL_ENV")}
    return {**env, "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1", **extra}


def _fresh_venv(folder: Path) -> Path:
    """A new virtual environment whose .pth reaches this one's packages; returns its python."""
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", folder], cwd=folder.parent,
             env=_clean_env()))
    python = folder / "bin" / "python"
    purelib = _ok(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       cwd=folder, env=_clean_env())).strip()
    borrowed = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    (Path(purelib) / "_borrowed_packages.pth").write_text("\n".join(borrowed) + "\n")
    return python


def _pip_install(python: Path, *args) -> None:
    _ok(_run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
              "--no-index", "--no-compile", *args], cwd=python.parent, env=_clean_env()))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    base = tmp_path_factory.mktemp("install")
    source = base / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, source / name)
    sdist = _build("build_sdist", source, base / "dist")
    with tarfile.open(sdist) as tar:
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python >= 3.11.4
        tar.extractall(base / "unpacked", **safe)
    (unpacked,) = (base / "unpacked").iterdir()
    wheel = _build("build_wheel", unpacked, base / "dist")
    venv = base / "venv with spaces ü"
    python = _fresh_venv(venv)
    _pip_install(python, wheel)
    home = base / "home of Zoë Ångström"
    outside = home / "somewhere else"
    outside.mkdir(parents=True)
    return {"base": base, "sdist": sdist, "wheel": wheel, "venv": venv, "python": python,
            "bin": venv / "bin" / "vqstudio", "outside": outside, "source": source,
            "env": _clean_env(HOME=str(home))}


def test_the_sdist_and_the_wheel_carry_presets_demo_corpus_and_icons(installed):
    with tarfile.open(installed["sdist"]) as tar:
        in_sdist = {Path(*Path(n).parts[1:]).as_posix() for n in tar.getnames()}
    with zipfile.ZipFile(installed["wheel"]) as whl:
        in_wheel = set(whl.namelist())
    for folder, names in (("presets", [p + ".toml" for p in PRESETS]), ("demo", DEMO), ("icons", ICONS)):
        for name in names:
            assert f"resources/{folder}/{name}" in in_sdist
            assert f"vqstudio/_resources/{folder}/{name}" in in_wheel


def test_the_installed_wheel_runs_outside_the_repository(installed):
    env, cwd, bin_ = installed["env"], installed["outside"], installed["bin"]
    code = ("import vqstudio, vqstudio.resources as r; "
            "print(vqstudio.__file__); print(r.presets_dir()); print(r.demo_dir()); print(r.icon_path())")
    where = _ok(_run([installed["python"], "-c", code], cwd=cwd, env=env)).splitlines()
    for line in where:
        assert Path(line).resolve().is_relative_to(installed["venv"].resolve()), where
        assert not Path(line).resolve().is_relative_to(ROOT), where

    assert _ok(_run([bin_, "--version"], cwd=cwd, env=env)).startswith("vqstudio 0.1.0")
    listed = [line.split()[0] for line in _ok(_run([bin_, "presets"], cwd=cwd, env=env)).splitlines()]
    assert listed == PRESETS
    assert "usage: vqstudio app" in _ok(_run([bin_, "app", "--help"], cwd=cwd, env=env))

    # The default preset (made tiny to be quick) on the built-in demo corpus, 3 steps.
    run = cwd / "runs" / "première run"
    _ok(_run([bin_, "train", "--run", run, "--steps", "3", *tiny_sets()], cwd=cwd, env=env))
    config = tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))
    assert config["data"]["path"] == ""  # the demo corpus, which only the installed copy can reach
    assert config["written_by"]["version"] == "0.1.0" and config["written_by"]["torch"]
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*.pt")) == ["step-00000003.pt"]


def test_paths_with_spaces_and_non_ascii_characters_train_and_reconstruct(installed):
    env, cwd, bin_ = installed["env"], installed["outside"], installed["bin"]
    data = cwd / "données d'été" / "a b"
    data.mkdir(parents=True)
    for name in ("speech-04-directions.flac", "music-harp.flac"):
        shutil.copy2(ROOT / "resources" / "demo" / name, data / f"clip {name[:5]} ñ.flac")
    run = cwd / "runs" / "ünïcode run ☃"
    _ok(_run([bin_, "train", "--run", run, "--data", data, "--steps", "3", *tiny_sets()], cwd=cwd, env=env))
    assert tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))["data"]["path"] == str(data.resolve())
    target = cwd / "out put" / "reconstruction ö.wav"
    target.parent.mkdir()
    _ok(_run([bin_, "reconstruct", "--run", run, data / "clip speec ñ.flac", target], cwd=cwd, env=env))
    assert sf.info(str(target)).frames > 0


def test_the_desktop_entry_installs_validates_and_uninstalls(installed):
    env, cwd, bin_ = installed["env"], installed["outside"], installed["bin"]
    data_home = installed["base"] / "xdg data ü"
    env = {**env, "XDG_DATA_HOME": str(data_home)}
    _ok(_run([bin_, "install-desktop"], cwd=cwd, env=env))
    entry = data_home / "applications" / "vqstudio.desktop"
    text = entry.read_text(encoding="utf-8")
    python = str(installed["python"])
    assert f'Exec="{python}" -m vqstudio app %F' in text  # quoted: the path has a space
    for size in (48, 128, 256):
        assert (data_home / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "vqstudio.png").is_file()
    assert (data_home / "icons" / "hicolor" / "scalable" / "apps" / "vqstudio.svg").is_file()
    if shutil.which("desktop-file-validate"):
        result = _run(["desktop-file-validate", entry], cwd=cwd, env=env)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr
    removed = _ok(_run([bin_, "install-desktop", "--uninstall"], cwd=cwd, env=env))
    assert removed.count("removed ") == 5
    assert not entry.exists()


def test_a_missing_resource_says_what_is_missing_and_how_to_reinstall(installed):
    env, cwd, bin_ = installed["env"], installed["outside"], installed["bin"]
    shipped = installed["venv"] / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    shipped = shipped / "site-packages" / "vqstudio" / "_resources"
    for missing, cmd, needle in (
        (shipped / "demo", ["train", "--run", cwd / "no demo", "--steps", "1"], "the demo corpus is missing"),
        (shipped / "presets", ["presets"], "no presets in"),
        (shipped, ["presets"], "the shipped resources are missing"),
    ):
        moved = missing.with_name(missing.name + ".moved")
        missing.rename(moved)
        try:
            result = _run([bin_, *cmd], cwd=cwd, env=env)
        finally:
            moved.rename(missing)
        assert result.returncode == 2, result.stdout + result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0] and "reinstall" in lines[0], result.stderr


def test_an_editable_install_reads_resources_in_place(installed):
    python = _fresh_venv(installed["base"] / "editable venv")
    _pip_install(python, "--no-build-isolation", "-e", installed["source"])
    code = "import vqstudio.resources as r; print(r.demo_dir())"
    demo = _ok(_run([python, "-c", code], cwd=installed["outside"], env=installed["env"])).strip()
    assert Path(demo) == installed["source"] / "resources" / "demo"


def test_the_version_names_the_commit_in_a_clone_and_run_configs_record_it(tmp_path):
    from vqstudio.config import Config, load_config, load_preset
    from vqstudio.version import __version__, git_revision, version_info

    info = version_info()
    assert info["version"] == __version__
    revision = git_revision(ROOT)
    if revision:  # a clone with git: the commit is HEAD's
        assert info["commit"] == revision["commit"] and len(info["commit"]) == 40
    result = subprocess.run([sys.executable, "-m", "vqstudio", "--version"], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path, env=_clean_env())
    assert result.returncode == 0 and result.stdout.startswith(f"vqstudio {__version__}")
    assert f"torch {info['torch']}" in result.stdout

    config = load_preset("tiny-cpu")
    text = config.to_toml()
    assert tomllib.loads(text)["written_by"]["version"] == __version__
    (tmp_path / "new.toml").write_text(text, encoding="utf-8")
    (tmp_path / "old.toml").write_text(config.to_toml(written_by=False), encoding="utf-8")
    assert "written_by" not in (tmp_path / "old.toml").read_text(encoding="utf-8")
    assert load_config(tmp_path / "new.toml") == load_config(tmp_path / "old.toml") == config
    assert isinstance(Config.from_dict(tomllib.loads(text)), Config)


@pytest.mark.parametrize("tools", [(), ("dpkg-query", "id")], ids=["no dpkg or apt", "dpkg, no apt"])
def test_the_system_package_step_skips_cleanly_without_apt(tmp_path, tools):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in tools:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    script = ROOT / "scripts" / "ensure_system_packages.sh"
    result = subprocess.run([shutil.which("sh"), script, "libportaudio2", "vqstudio-no-such-package"],
                            capture_output=True, text=True, timeout=60, env={"PATH": str(bin_dir)})
    assert result.returncode == 0, result.stderr
    assert "vqstudio-no-such-package" in result.stderr
    assert ("not Debian" in result.stderr) == (not tools), result.stderr
    assert "apt-get install" not in result.stderr, result.stderr


def test_the_icon_pngs_are_rendered_from_the_svg(qapp, tmp_path):
    """Each PNG has its size and matches a fresh render of the SVG (edit the SVG, re-render).

    pytest-qt's QApplication exists first, so render() does not leave a bare QGuiApplication
    behind that would break the widget tests later in the same process."""
    import numpy as np
    from PySide6.QtGui import QImage

    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from render_icons import render
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    from vqstudio.resources import ICON_SIZES, icon_path

    def pixels(path: Path) -> np.ndarray:
        image = QImage(str(path)).convertToFormat(QImage.Format.Format_RGBA8888)
        assert not image.isNull(), path
        rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
        return rows[:, : image.width() * 4].reshape(image.height(), image.width(), 4).copy()

    fresh = render(icon_path(), tmp_path)
    for size, path in zip(ICON_SIZES, fresh):
        shipped = pixels(icon_path(size))
        assert shipped.shape == (size, size, 4)
        assert np.abs(shipped.astype(int) - pixels(path)).mean() < 0.5, f"{icon_path(size)} is stale"


@pytest.mark.parametrize("path", ["/opt/vq studio/bin/python", '/tmp/a"b$c`d\\e/python',
                                  "/home/zoë/100% sure/python", "/usr/bin/python3"])
def test_exec_arguments_survive_desktop_quoting(path):
    """Undo the string escape, then let sh read the argument: inside double quotes a POSIX shell
    honours exactly the backslash escapes the Desktop Entry Specification gives Exec."""
    from vqstudio.desktop import exec_argument

    text = exec_argument(path)
    assert ("\\" not in path and " " not in path) or text.startswith('"')
    unescaped = text.replace("\\\\", "\\").replace("%%", "%")
    result = subprocess.run(["sh", "-c", f"printf '%s' {unescaped}"], capture_output=True, text=True,
                            timeout=30)
    assert result.stdout == path, result.stderr
