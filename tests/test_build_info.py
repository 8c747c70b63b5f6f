"""A non-editable build records the git revision it was built from (setup.py writes
hotmess/core/_build_info.json into the wheel) and cube provenance reads it where there is no
.git (the Docker image, `pip install .`). The expected revisions come from git itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()


def _wheel(tmp: Path, env: dict[str, str]) -> Path:
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp), str(ROOT)],
                          capture_output=True, text=True, timeout=600, env={**os.environ, **env})
    if proc.returncode != 0:
        pytest.skip(f"cannot build a wheel here (build dependencies need an index): {proc.stderr[-300:]}")
    return next(tmp.glob("hotmess-*.whl"))


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_wheel_records_the_checkout_revision_and_cube_provenance_reads_it(tmp_path):
    expected = _git("rev-parse", "HEAD")
    if _git("status", "--porcelain", "--untracked-files=no"):
        expected += "+dirty"
    whl = _wheel(tmp_path, {"HOTMESS_GIT_REVISION": ""})
    with zipfile.ZipFile(whl) as zf:
        assert json.loads(zf.read("hotmess/core/_build_info.json")) == {"git_revision": expected}
        zf.extractall(tmp_path / "site")
    # No site (no editable finder for the dev checkout), the unpacked wheel first, then the
    # environment's packages for numpy/xarray; run where there is no .git.
    code = ("import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2]); "
            "from hotmess.core import cube; print(cube.__file__); print(cube._git_revision())")
    out = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path / "site"),
                          sysconfig.get_paths()["purelib"]], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, check=True).stdout.splitlines()
    assert out[0].startswith(str(tmp_path / "site"))
    assert out[1] == expected


def test_build_arg_revision_wins_over_git(tmp_path):
    whl = _wheel(tmp_path, {"HOTMESS_GIT_REVISION": "0123abcd-from-docker-build-arg"})
    with zipfile.ZipFile(whl) as zf:
        info = json.loads(zf.read("hotmess/core/_build_info.json"))
        assert info == {"git_revision": "0123abcd-from-docker-build-arg"}
        assert not any(n.startswith("hotmess/core/_build_info.json") and n != "hotmess/core/_build_info.json"
                       for n in zf.namelist())
    assert not (ROOT / "core" / "_build_info.json").exists()  # the source tree is not written to
