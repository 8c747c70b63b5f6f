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


@pytest.mark.parametrize("reader", ["mmlu", "mwe", "gpqa"])
def test_data_that_is_not_utf8_names_file_line_and_column(tmp_path, reader):
    from hotmess.plugins.mc.jsonl import iter_jsonl

    good = '{"question": "Q?", "subject": "anatomy", "choices": ["a", "b"], "answer": 0}\n'
    bad = good + '{"question": "caf\xe9", "subject": "anatomy", "choices": ["a", "b"], "answer": 0}\n'
    raw = bad.encode("latin-1")  # a Latin-1 file: byte 0xe9 on line 2, column 18
    if reader == "mmlu":
        (tmp_path / "test.jsonl").write_bytes(raw)
        with pytest.raises(ValueError, match=r"test.jsonl:2:18: not UTF-8 text \(byte 0xe9\)"):
            list(iter_jsonl(tmp_path / "test.jsonl"))
    elif reader == "mwe":
        from hotmess.plugins.mwe.data import MweDataError, load_subset

        (tmp_path / "survival-instinct.jsonl").write_bytes(b'{"question": "x"}\n' + "\xe9".encode("latin-1"))
        with pytest.raises(MweDataError, match=r"survival-instinct.jsonl:2:1: not UTF-8"):
            load_subset("survival-instinct", data_dir=tmp_path)
    else:
        from hotmess.plugins.gpqa.task import _read_local

        (tmp_path / "gpqa_main.csv").write_bytes("Question,Correct Answer\n\xe9,x\n".encode("latin-1"))
        with pytest.raises(ValueError, match=r"gpqa_main.csv:2:1: not UTF-8"):
            _read_local(tmp_path, "main")
