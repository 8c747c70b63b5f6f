"""No silent corruption: every case of the corruption review reproduced with real processes.

Runs are real ``hotmess run`` processes (the example plugin's calculator backend, made slow
with ``backend.seconds_per_request`` so that a second process can meet the first mid-run);
the cube of every accepted run is compared with an uninterrupted reference run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "example_plugin" / "src"
SHARED = Path(__file__).parents[2] / "shared" / "data"
RUNNER = f"""
import sys
sys.path.insert(0, {str(EXAMPLE)!r})
import hotmess_example
from hotmess.core import plugins
plugins.register_plugin(hotmess_example, "example")
from hotmess.cli import main
sys.argv = ["hotmess", *sys.argv[1:]]
main()
"""
BASE = [f"hydra.searchpath=[file://{EXAMPLE / 'hotmess_example' / 'conf'}]", "experiment=arith_demo",
        "chunk_questions=2", "budgets=[4,16]", "draws=4", "seeds_per_context=2",
        "+models.calculator.run_sizes=[careful]"]
VARS = ("outcome", "reasoning_tokens", "output_tokens", "finish_reason", "format_error", "seed", "text",
        "answer", "reasoning_text")


#: Seconds per request of the calculator: slow enough for a second process to meet the first
#: mid-run. The same for every run of one folder (a backend option is a setting).
SLOW = 0.1


#: The arith task's own option (other tasks are selected with task=... in ``args``).
ARITH = ("task.n_questions=12",)


def hotmess(tmp: Path, *args: str, slow: float = SLOW, wait: bool = True, timeout: int = 120,
            task: tuple[str, ...] = ARITH):
    cmd = [sys.executable, "-c", RUNNER, "run", *BASE, *task, f"out_dir={tmp / 'results'}",
           f"backend.seconds_per_request={slow}", *args]
    env = {**os.environ, "HOTMESS_DEBUG": "", "PYTHONUNBUFFERED": "1"}
    if not wait:
        return subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout)


def parts(tmp: Path, experiment: str = "arith_demo") -> list[Path]:
    return sorted((tmp / "results" / experiment / "parts").glob("*/*.nc"))


def wait_for_parts(tmp: Path, n: int, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while len(parts(tmp)) < n:
        assert time.monotonic() - t0 < timeout, f"fewer than {n} parts after {timeout} s"
        time.sleep(0.1)


def cube(tmp: Path, experiment: str = "arith_demo") -> xr.Dataset:
    with xr.open_dataset(tmp / "results" / experiment / "cube.nc") as ds:
        return ds.load()


def same_data(a: xr.Dataset, b: xr.Dataset) -> None:
    for v in VARS:
        xr.testing.assert_identical(a[v].reset_coords(drop=True), b[v].reset_coords(drop=True))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    out = hotmess(tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    ref = cube(tmp)
    assert ref.sizes["question"] == 12 and ref.sizes["draw"] == 4 and ref.sizes["budget"] == 2
    return ref


def last_line(out) -> str:
    text = (out.stderr or "") + (out.stdout or "")
    return [ln for ln in text.splitlines() if "error:" in ln][-1]


def test_other_settings_are_refused_while_a_run_is_live(tmp_path, reference):
    first = hotmess(tmp_path, wait=False)
    try:
        wait_for_parts(tmp_path, 1)
        second = hotmess(tmp_path, "seed=1")
        assert second.returncode == 2
        msg = last_line(second)
        assert "being written right now by another run" in msg and f"pid {first.pid}" in msg
        assert "experiment_seed" in msg or "seed: 0 -> 1" in msg
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
    same_data(cube(tmp_path), reference)  # the first run's cube holds only its own samples
    # and after it has finished, the other seed is refused by the parts' fingerprints
    again = hotmess(tmp_path, "seed=1")
    assert again.returncode == 2 and "seed: 0 -> 1" in last_line(again)


def test_same_settings_share_the_work_chunk_by_chunk(tmp_path, reference):
    a = hotmess(tmp_path, wait=False)
    b = hotmess(tmp_path, wait=False)
    outs = [p.communicate(timeout=180)[0] for p in (a, b)]
    assert [a.returncode, b.returncode] == [0, 0], outs
    sampled = [int(m) for o in outs for m in re.findall(r"(\d+) chunk\(s\) of this run sampled", o)]
    assert sum(sampled) == 12, outs  # 6 chunks x 2 budgets, each sampled exactly once
    assert len(parts(tmp_path)) == 12
    final = hotmess(tmp_path)  # assembles again: nothing left to sample
    assert final.returncode == 0
    same_data(cube(tmp_path), reference)


def test_killed_run_resumes_to_the_reference_cube(tmp_path, reference):
    run = hotmess(tmp_path, wait=False)
    wait_for_parts(tmp_path, 3)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)
    assert hotmess(tmp_path).returncode == 0  # the dead run's record and claims are stale
    same_data(cube(tmp_path), reference)


def test_deleted_manifest_does_not_let_other_settings_in(tmp_path, reference):
    assert hotmess(tmp_path).returncode == 0
    manifest = tmp_path / "results" / "arith_demo" / "manifest.json"
    for change, key in (("seed=1", "experiment_seed: 0 -> 1"), ("draws=6", "draws: 4 -> 6")):
        manifest.unlink()
        out = hotmess(tmp_path, change)
        assert out.returncode == 2, out.stdout[-2000:]
        msg = last_line(out)
        assert key in msg and "parts/calculator__careful__" in msg and "another out_dir" in msg
    same_data(cube(tmp_path), reference)


def test_budget_cap_changed_under_the_same_label(tmp_path):
    # a mapping label -> cap replaces the experiment's list (delete it, then add the mapping)
    first = hotmess(tmp_path, "~budgets", "+budgets={16:16}")
    assert first.returncode == 0, first.stderr[-2000:]
    out = hotmess(tmp_path, "~budgets", "+budgets={16:64}")
    assert out.returncode == 2
    assert "budget.tokens: 16 -> 64" in last_line(out)


def test_edited_data_file_and_the_same_folder_by_another_path(tmp_path):
    data = tmp_path / "mmlu"
    data.mkdir()
    for name in ("test.jsonl", "dev.jsonl"):
        lines = (SHARED / "mmlu" / name).read_text(encoding="utf-8").split("\n")
        subjects = ("anatomy", "astronomy")
        keep = [ln for s in subjects for ln in [x for x in lines if x.strip() and json.loads(x)["subject"] == s][:6]]
        (data / name).write_text("\n".join(keep) + "\n", encoding="utf-8")
    args = ["task=mmlu", "task.per_subject=3", "task.n_shot=1", "task.subjects=[anatomy,astronomy]"]
    first = hotmess(tmp_path, *args, "task.data_dir=mmlu", task=())
    assert first.returncode == 0, first.stderr[-3000:]
    before = cube(tmp_path)
    # the same folder given as an absolute path is the same setting
    assert hotmess(tmp_path, *args, f"task.data_dir={data}", task=()).returncode == 0
    same_data(cube(tmp_path), before)
    # an edited data file is refused, naming the changed hash
    text = (data / "test.jsonl").read_text(encoding="utf-8").replace('"answer": 0', '"answer": 1', 1)
    (data / "test.jsonl").write_text(text, encoding="utf-8")
    out = hotmess(tmp_path, *args, "task.data_dir=mmlu", task=())
    assert out.returncode == 2
    assert "data_test_sha256" in last_line(out)
    same_data(cube(tmp_path), before)


@pytest.mark.parametrize("budgets", ["[low]", "[abc]"])
def test_budgets_a_backend_cannot_honour_are_refused_before_sampling(tmp_path, budgets):
    out = hotmess(tmp_path, f"budgets={budgets}")
    assert out.returncode == 2
    msg = last_line(out)
    label = budgets.strip("[]")
    assert "backend 'calculator' honours budgets of kind ['tokens'] only" in msg and f"'{label}'" in msg
    assert parts(tmp_path) == []


def test_seeds_per_context_must_be_positive_and_uneven_contexts_warn(tmp_path):
    out = hotmess(tmp_path, "seeds_per_context=0")
    assert out.returncode == 2 and "must be positive" in last_line(out)
    out = hotmess(tmp_path, "draws=5", "seeds_per_context=2")
    assert out.returncode == 0
    assert "contexts 0..1 get 2 draws each and context 2 gets 1" in out.stdout + out.stderr
    assert list(cube(tmp_path)["context"].values) == [0, 0, 1, 1, 2]


def test_different_chunking_at_once_is_refused_and_leaves_the_folder_usable(tmp_path, reference):
    first = hotmess(tmp_path, wait=False)
    try:
        wait_for_parts(tmp_path, 1)
        other = hotmess(tmp_path, "chunk_questions=3")
        assert other.returncode == 2 and "chunk_questions: 2 -> 3" in last_line(other)
        assert first.wait(timeout=120) == 0
    finally:
        first.kill()
    same_data(cube(tmp_path), reference)
    shutil.rmtree(tmp_path / "results" / "arith_demo" / ".locks")  # nothing depends on lock files
    assert hotmess(tmp_path).returncode == 0


def test_no_home_path_in_manifest_hydra_outputs_or_logs(tmp_path, monkeypatch):
    home = tmp_path / "home" / "someone"
    (home / "data").mkdir(parents=True)
    for name in ("test.jsonl", "dev.jsonl"):
        shutil.copy(SHARED / "mmlu" / name, home / "data" / name)
    monkeypatch.setenv("HOME", str(home))
    out = hotmess(tmp_path, "task=mmlu", "task.per_subject=1", "task.subjects=[anatomy]", "task.n_shot=1",
                  f"task.data_dir={home / 'data'}", task=())
    assert out.returncode == 0, out.stderr[-2000:]
    root = tmp_path / "results" / "arith_demo"
    texts = {p: p.read_text(errors="replace") for p in root.rglob("*")
             if p.is_file() and p.suffix in (".json", ".yaml", ".log")}
    assert any(p.name == "manifest.json" for p in texts) and any(p.suffix == ".log" for p in texts)
    leaks = [str(p) for p, t in texts.items() if str(home) in t]
    assert leaks == []
    assert "~/data" in (root / "manifest.json").read_text()
    assert np.all(cube(tmp_path)["outcome"].notnull().any("option"))


def test_a_backend_value_resolved_per_machine_is_checked_before_new_draws(tmp_path):
    """``dtype: auto`` may resolve to bf16 on one machine and fp32 on another: adding draws to a
    cell on the other machine is refused (the machine is simulated, see machine_dependent_plugin)."""
    env = {"HOTMESS_PLUGINS": "machine_dependent_plugin",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    old = dict(os.environ)
    try:
        os.environ.update(env, FAKE_DTYPE="bfloat16")
        first = hotmess(tmp_path, "backend.name=calculator_auto", "shard=0/2")
        assert first.returncode == 0, first.stderr[-2000:]
        os.environ["FAKE_DTYPE"] = "float32"
        second = hotmess(tmp_path, "backend.name=calculator_auto")
    finally:
        os.environ.clear()
        os.environ.update(old)
    assert second.returncode == 2
    msg = last_line(second)
    assert "backend dtype: 'bfloat16' -> 'float32'" in msg and "parts/calculator__careful__" in msg


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root (CI runs as root)")


@needs_root
def test_disk_full_mid_run_is_one_line_and_the_rerun_completes(tmp_path, reference):
    results = tmp_path / "results"
    results.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(results)], check=True, timeout=30)
    try:
        out = hotmess(tmp_path)
        assert out.returncode == 2, out.stdout[-2000:]
        msg = last_line(out)
        safe = len(parts(tmp_path))
        assert "disk full while writing" in msg and f"{safe} part file(s) written before are safe" in msg
        assert "rerun the same command to resume" in msg and "Traceback" not in out.stderr
        assert 0 < safe < 12
        subprocess.run(["mount", "-o", "remount,size=50m", str(results)], check=True, timeout=30)
        again = hotmess(tmp_path)
        assert again.returncode == 0, again.stderr[-2000:]
        same_data(cube(tmp_path), reference)
    finally:
        subprocess.run(["umount", "-l", str(results)], check=False, timeout=30)


@needs_root
def test_read_only_results_and_results_that_is_a_file(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,ro", "tmpfs", str(ro)], check=True, timeout=30)
    try:
        out = hotmess(tmp_path, f"out_dir={ro}")
        assert out.returncode == 2 and "read-only" in last_line(out) and "Traceback" not in out.stderr
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=False, timeout=30)
    (tmp_path / "afile").write_text("x")
    out = hotmess(tmp_path, f"out_dir={tmp_path / 'afile'}")
    assert out.returncode == 2 and "is a file, not a folder" in last_line(out)
