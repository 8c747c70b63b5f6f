"""Map the repository's top-level folders onto one import package, ``hotmess``.

``core/`` -> ``hotmess.core``, ``plugins/`` -> ``hotmess.plugins``, ``paper/`` ->
``hotmess.paper``, ``conf/`` -> ``hotmess.conf`` (the Hydra configs, shipped in the wheel),
``cli/`` -> ``hotmess.cli`` (the command line, above core and paper), and ``core/testing/`` -> ``hotmess.testing`` (the conformance kit for plugin authors).
``hotmess`` itself is a namespace package, so the wheel installs no generic top-level
names.  Everything else about the build lives in ``pyproject.toml``.

A non-editable build (wheel, ``pip install .``, the Docker image) also writes
``hotmess/core/_build_info.json`` into the built package: the git revision the code was built
from (``$HOTMESS_GIT_REVISION`` if set, e.g. by ``docker build --build-arg GIT_REVISION=...``
where ``.git`` is not copied; else ``git rev-parse HEAD`` plus ``+dirty`` for uncommitted
changes; else ``unknown``). ``hotmess.core.cube._git_revision`` reads it, so every cube made by
an installed copy records its revision. The source tree is never written to.
"""

import json
import os
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent
TOP = {"core": "hotmess.core", "plugins": "hotmess.plugins", "paper": "hotmess.paper", "conf": "hotmess.conf",
       "cli": "hotmess.cli"}
#: Sub-folders installed under another name: the plugin conformance kit is ``hotmess.testing``.
RENAMED = {"core/testing": "hotmess.testing"}


def _packages():
    package_dir, packages = {}, []
    for folder, name in TOP.items():
        for d in sorted(p for p in (ROOT / folder).rglob("*") if p.is_dir()) + [ROOT / folder]:
            if "__pycache__" in d.parts:
                continue
            rel = d.relative_to(ROOT / folder)
            if folder != "conf" and not (d / "__init__.py").exists():
                continue
            path = d.relative_to(ROOT).as_posix()
            renamed = next((k for k in RENAMED if path == k or path.startswith(k + "/")), None)
            if renamed:
                pkg = ".".join([RENAMED[renamed], *Path(path).relative_to(renamed).parts])
            else:
                pkg = ".".join([name, *rel.parts]) if rel.parts else name
            packages.append(pkg)
            package_dir[pkg] = str(d.relative_to(ROOT))
    return packages, package_dir


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def build_revision() -> str:
    """The revision this build is made from (see the module docstring)."""
    if os.environ.get("HOTMESS_GIT_REVISION"):
        return os.environ["HOTMESS_GIT_REVISION"]
    rev = _git("rev-parse", "HEAD")
    if not rev:
        return "unknown"
    return rev + ("+dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")


class BuildPyWithInfo(build_py):
    """build_py that also writes ``hotmess/core/_build_info.json`` (not in editable mode:
    an editable install asks git at run time)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib, *"hotmess.core".split("."), "_build_info.json")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"git_revision": build_revision()}) + "\n")

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if not getattr(self, "editable_mode", False):
            outputs.append(str(Path(self.build_lib, "hotmess", "core", "_build_info.json")))
        return outputs


packages, package_dir = _packages()
setup(packages=packages, package_dir=package_dir, cmdclass={"build_py": BuildPyWithInfo})
