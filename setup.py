"""Map the repository's top-level folders onto one import package, ``hotmess``.

``core/`` -> ``hotmess.core``, ``plugins/`` -> ``hotmess.plugins``, ``paper/`` ->
``hotmess.paper``, ``conf/`` -> ``hotmess.conf`` (the Hydra configs, shipped in the wheel),
``cli/`` -> ``hotmess.cli`` (the command line, above core and paper), and ``core/testing/`` -> ``hotmess.testing`` (the conformance kit for plugin authors).
``hotmess`` itself is a namespace package, so the wheel installs no generic top-level
names.  Everything else about the build lives in ``pyproject.toml``.
"""

from pathlib import Path

from setuptools import setup

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


packages, package_dir = _packages()
setup(packages=packages, package_dir=package_dir)
