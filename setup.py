"""Build hook: carry the top-level ``resources/`` folder into the package.

Everything else about the build is declared in ``pyproject.toml``. ``resources/`` (presets, the
demo corpus, the icons) stays the source of truth at the top of the repository; building a wheel
copies it to ``vqstudio/_resources`` inside the package, where ``vqstudio.resources`` finds it
with importlib.resources. The sdist carries ``resources/`` itself (MANIFEST.in), so a wheel built
from the sdist gets the same copy. Editable installs skip the copy: they read ``resources/`` in
place. The wheel also records the git commit it was built from, when built from a clone.
"""

import json
import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
RESOURCE_GLOBS = ("presets/*.toml", "demo/*.flac", "demo/README.md", "icons/*.svg", "icons/*.png")


class BuildWithResources(build_py):
    def run(self):
        super().run()
        if self.editable_mode:
            return
        package = Path(self.build_lib) / "vqstudio"
        target = package / "_resources"
        if target.exists():
            shutil.rmtree(target)
        copied = 0
        for pattern in RESOURCE_GLOBS:
            for source in sorted((ROOT / "resources").glob(pattern)):
                dest = target / source.relative_to(ROOT / "resources")
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, dest)
                copied += 1
        if not copied:
            raise SystemExit(f"{ROOT / 'resources'} is missing: the package would ship no presets")
        version = runpy.run_path(str(ROOT / "vqstudio" / "version.py"))
        revision = version["git_revision"](ROOT)
        if revision:
            (package / version["BUILD_INFO"]).write_text(json.dumps(revision) + "\n", encoding="utf-8")


setup(cmdclass={"build_py": BuildWithResources})
