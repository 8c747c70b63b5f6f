"""Paper-scale sweeps on a real SLURM cluster: many jobs, one cube.

The test starts a single-node SLURM cluster on loopback (Debian's slurm-wlm and munge,
``scripts/slurm/cluster.sh``; ``.ci/run`` installs the packages) and sends multiruns through
Hydra's submitit launcher (``hydra/launcher=slurm``). If the daemons cannot start, the test
fails with their logs. Every wait is bounded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the slurm extra is not installed")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXAMPLE = HERE / "example_plugin" / "src"
SHARED = Path(__file__).parents[2] / "shared" / "data"
CLUSTER = ROOT / "scripts" / "slurm" / "cluster.sh"
ARITH = [f"hydra.searchpath=[file://{EXAMPLE / 'hotmess_example' / 'conf'}]", "experiment=arith_demo",
         "task.n_questions=16", "chunk_questions=2", "budgets=[4,16]", "draws=4", "seeds_per_context=2",
         "backend.seconds_per_request=0.1"]
VARS = ("outcome", "reasoning_tokens", "output_tokens", "finish_reason", "format_error", "seed", "text")
LAUNCH = ["hydra/launcher=slurm", "hydra.launcher.timeout_min=10"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if shutil.which("slurmctld") is None or shutil.which("sbatch") is None:
        pytest.fail("SLURM is not installed: run `scripts/slurm/cluster.sh install` (as root; .ci/run does)")
    state = tmp_path_factory.mktemp("slurm")
    start = subprocess.run(["bash", str(CLUSTER), "start", str(state)], capture_output=True, text=True, timeout=120)
    if start.returncode != 0:
        subprocess.run(["bash", str(CLUSTER), "stop", str(state)], timeout=60)
        pytest.fail(f"SLURM daemons did not start:\n{start.stdout}\n{start.stderr}")
    env = {"SLURM_CONF": str(state / "slurm.conf")}
    try:
        yield env
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop", str(state)], timeout=60)


def env_for(cluster) -> dict[str, str]:
    return {**os.environ, **cluster, "HOTMESS_PLUGINS": "hotmess_example",
            "PYTHONPATH": os.pathsep.join([str(EXAMPLE), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep),
            "PYTHONUNBUFFERED": "1"}


def hotmess(cluster, *args: str, cwd: Path, wait: bool = True, timeout: int = 300):
    cmd = [sys.executable, "-m", "hotmess.cli", *args]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=env_for(cluster), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    return subprocess.run(cmd, cwd=cwd, env=env_for(cluster), capture_output=True, text=True, timeout=timeout)


def slurm(cluster, *cmd: str) -> str:
    return subprocess.run(cmd, env={**os.environ, **cluster}, capture_output=True, text=True, timeout=30).stdout


def cube(path: Path) -> xr.Dataset:
    with xr.open_dataset(path) as ds:
        return ds.load()


def assert_same(a: xr.Dataset, b: xr.Dataset) -> None:
    for v in VARS:
        xr.testing.assert_identical(a[v].reset_coords(drop=True), b[v].reset_coords(drop=True))


@pytest.fixture(scope="module")
def single(cluster, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("single")
    out = hotmess(cluster, "run", *ARITH, f"out_dir={tmp}", cwd=tmp)
    assert out.returncode == 0, out.stderr[-3000:]
    return cube(tmp / "arith_demo" / "cube.nc")


def wait_until(pred, timeout: float, what: str) -> None:
    t0 = time.monotonic()
    while not pred():
        assert time.monotonic() - t0 < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.5)


def test_four_shard_jobs_make_the_single_process_cube(cluster, single, tmp_path):
    status0 = hotmess(cluster, "status", "arith_demo", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert status0.returncode != 0 and "no experiment folder" in status0.stderr + status0.stdout or \
        "no plan.json" in status0.stderr + status0.stdout
    sweep = hotmess(cluster, "run", "-m", *ARITH, f"out_dir={tmp_path}", "shard=0/4,1/4,2/4,3/4", *LAUNCH,
                    cwd=tmp_path, wait=False)
    try:
        wait_until(lambda: (tmp_path / "arith_demo" / "plan.json").exists(), 120, "a job to start")
        queue = slurm(cluster, "squeue")
        during = hotmess(cluster, "status", "arith_demo", "--out-dir", str(tmp_path), cwd=tmp_path)
        out, _ = sweep.communicate(timeout=300)
    finally:
        sweep.kill()
    assert sweep.returncode == 0, out[-4000:]
    # the launcher returns once every job's result is written; SLURM marks the job completed
    # a moment later (finished jobs stay listed for MinJobAge)
    wait_until(lambda: slurm(cluster, "scontrol", "-o", "show", "job").count("JobState=COMPLETED") == 4, 30,
               "four COMPLETED jobs")
    done = slurm(cluster, "scontrol", "-o", "show", "job")
    assert sorted(re.findall(r"ArrayTaskId=(\d+)", done)) == ["0", "1", "2", "3"], done
    jobs = slurm(cluster, "sacct", "-c")  # the job completion log (no accounting database)
    after = hotmess(cluster, "status", "arith_demo", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert after.returncode == 0
    # 16 questions x 4 draws x 2 budgets x 2 sizes
    assert "total: 256/256 draws" in after.stdout and "complete" in after.stdout
    assert_same(cube(tmp_path / "arith_demo" / "cube.nc"), single)
    print("squeue during the sweep:\n" + queue)
    print("hotmess status during:\n" + during.stdout)
    print("hotmess status after:\n" + after.stdout)
    print("sacct -c:\n" + jobs)


def test_a_cancelled_job_is_resubmitted_and_completes_the_cube(cluster, single, tmp_path):
    sweep = hotmess(cluster, "run", "-m", *ARITH, f"out_dir={tmp_path}", "shard=0/1", *LAUNCH,
                    cwd=tmp_path, wait=False)
    try:
        wait_until(lambda: len(list((tmp_path / "arith_demo" / "parts").glob("*/*.nc"))) >= 3, 120,
                   "three parts written")
        ids = slurm(cluster, "squeue", "-h", "-o", "%i").split()
        assert ids, "no job in the queue"
        slurm(cluster, "scancel", *ids)
        wait_until(lambda: not slurm(cluster, "squeue", "-h").strip(), 60, "the cancelled job to leave the queue")
    finally:
        # without an accounting database (sacct) submitit cannot see that the job was cancelled
        # and would wait for it: the user interrupts the launcher, as here
        sweep.kill()
        sweep.communicate(timeout=30)
    n_before = len(list((tmp_path / "arith_demo" / "parts").glob("*/*.nc")))
    assert 3 <= n_before < 32
    status = hotmess(cluster, "status", "arith_demo", "--out-dir", str(tmp_path), cwd=tmp_path)
    assert "to complete: hotmess run" in status.stdout, status.stdout
    again = hotmess(cluster, "run", "-m", *ARITH, f"out_dir={tmp_path}", "shard=0/1", *LAUNCH, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-3000:]
    parts = sorted((tmp_path / "arith_demo" / "parts").glob("*/*.nc"))
    assert len(parts) == 32  # 8 chunks x 2 budgets x 2 sizes, no duplicates
    assert_same(cube(tmp_path / "arith_demo" / "cube.nc"), single)


def test_two_jobs_on_the_same_cells_leave_one_consistent_cube(cluster, single, tmp_path):
    # +copy=a,b does not change the draws: both jobs write the same cube, the same cells
    sweep = hotmess(cluster, "run", "-m", *ARITH, f"out_dir={tmp_path}", "+copy=a,b", *LAUNCH, cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stdout[-3000:]
    logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("slurm/**/*.out"))
    sampled = [int(m) for m in re.findall(r"(\d+) chunk\(s\) of this run sampled", logs)]
    assert len(sampled) == 2 and sum(sampled) == 32, logs[-3000:]  # each chunk sampled once
    assert_same(cube(tmp_path / "arith_demo" / "cube.nc"), single)


@pytest.mark.slow
def test_a_real_model_job_matches_the_single_process_run(cluster, tmp_path):
    gemma = ["experiment=cpu_demo", f"task.data_dir={SHARED / 'mmlu'}", "task.subjects=[anatomy]",
             "task.per_subject=2", "draws=2", "seeds_per_context=2", "budgets=[8]", "sampling.max_tokens=4"]
    one = hotmess(cluster, "run", *gemma, f"out_dir={tmp_path / 'one'}", cwd=tmp_path, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    job = hotmess(cluster, "run", "-m", *gemma, f"out_dir={tmp_path / 'job'}", "shard=0/1", *LAUNCH,
                  cwd=tmp_path, timeout=600)
    assert job.returncode == 0, job.stdout[-3000:]
    assert_same(cube(tmp_path / "job" / "cpu_demo" / "cube.nc"), cube(tmp_path / "one" / "cpu_demo" / "cube.nc"))
