"""Writing a cube onto a full, read-only or wrong path: one clear error, nothing partial left.

The full and read-only file systems are real: small tmpfs mounts made by the test (root only,
as in CI; elsewhere these two tests are skipped with that reason).
"""

from __future__ import annotations

import contextlib
import os
import subprocess

import numpy as np
import pytest
import xarray as xr

from hotmess.core.cube import CubeWriteError, save_cube

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")


@contextlib.contextmanager
def tmpfs(path, size: str, *, readonly: bool = False):
    path.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (",ro" if readonly else "")
    subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], check=True, timeout=30)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, timeout=30)


def cube(n: int = 200_000) -> xr.Dataset:
    return xr.Dataset({"outcome": (("question",), np.random.default_rng(0).random(n))})


@needs_root
def test_full_disk_names_the_file_and_the_space(tmp_path):
    with tmpfs(tmp_path / "full", "256k") as mnt:
        target = mnt / "parts" / "chunk00000.nc"
        with pytest.raises(CubeWriteError) as err:
            save_cube(cube(), target)
        assert err.value.reason == "disk full"
        msg = str(err.value)
        assert str(target) in msg and "MB free" in msg and "disk full" in msg
        assert sorted(p.name for p in (mnt / "parts").iterdir()) == []  # no temporary file left


@needs_root
def test_read_only_file_system(tmp_path):
    with tmpfs(tmp_path / "ro", "1m", readonly=True) as mnt:
        with pytest.raises(CubeWriteError, match="read-only") as err:
            save_cube(cube(10), mnt / "exp" / "cube.nc")
        assert err.value.reason == "read-only"


def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(CubeWriteError, match="is a file, not a folder") as err:
        save_cube(cube(10), tmp_path / "results" / "exp" / "cube.nc")
    assert str(tmp_path / "results") in str(err.value)
