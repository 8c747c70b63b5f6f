"""End to end on the real default model (Gemma 3 270M, CPU): `hotmess run` -> cube -> figure,
and a run killed midway that resumes into the same cube as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hydra import compose, initialize_config_dir

from hotmess.core import metrics, seeding
from hotmess.core.engine import run_experiment
from hotmess.core.hydra_app import CONF_DIR
from hotmess.paper.build import build_figures

pytestmark = pytest.mark.slow

MMLU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mmlu"
TINY = [
    f"task.data_dir={MMLU}",
    "task.subjects=[marketing,high_school_geography]",
    "task.per_subject=2",
    "task.n_shot=1",
    "draws=4",
    "seeds_per_context=2",
    "chunk_questions=1",
    "budgets=[8,24]",
    "sampling.max_tokens=4",
]


def _cfg(out_dir):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=[*TINY, f"out_dir={out_dir}"])


@pytest.fixture(scope="module")
def tiny_cube(tmp_path_factory):
    if not MMLU.exists():
        pytest.skip(f"local MMLU data not found at {MMLU}")
    out = tmp_path_factory.mktemp("e2e")
    path = run_experiment(_cfg(out))
    return path, xr.open_dataset(path).load()


def test_cube_shape_values_and_provenance(tiny_cube):
    path, ds = tiny_cube
    assert path.name == "cube.nc"
    assert dict(ds.sizes) == {"model": 1, "size": 1, "budget": 2, "question": 4, "draw": 4, "option": 4}
    assert ds["budget"].values.tolist() == ["8", "24"]
    assert ds["params"].item() == 268098176
    p = ds["outcome"].values
    assert np.isfinite(p).all()  # every cell ran
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-9)
    # one-hot where parsed, uniform where not (paper rule)
    fe = ds["format_error"].values.astype(bool)
    assert np.all(p[fe] == 0.25)
    assert np.all(np.sort(p[~fe], axis=-1) == [0, 0, 0, 1])
    # reasoning capped by the budget
    rt = ds["reasoning_tokens"]
    assert (rt.sel(budget="8") <= 8).all() and (rt.sel(budget="24") <= 24).all()
    hit = ds["finish_reason"].values == 2  # "budget"
    assert np.all(rt.values[hit] == np.broadcast_to(np.array([8, 24])[None, None, :, None, None], rt.shape)[hit])
    # seeds are the documented pure function of the labels
    q, d = ds["question"].values[1], 3
    assert int(ds["seed"].sel(budget="24", question=q, draw=d).item()) == seeding.draw_seed(0, "gemma3", "270M", "24", q, d)
    assert ds["context"].values.tolist() == [0, 0, 1, 1]
    assert "gguf_sha256" in json.loads(ds.attrs["backend_info"])["gemma3/270M"] or ds.attrs["backend_info"]
    assert "task:" in ds.attrs["config"] and ds.attrs["hotmess_version"]
    assert ds["text"].values.astype(str).size == 32


def test_figure_numbers_match_metrics(tiny_cube, tmp_path):
    path, ds = tiny_cube
    # fig02a's x is the option `length` (default output_tokens, the paper's length; here the
    # reasoning tokens) and its y the family's incoherence (`kl_incoherence`)
    report = build_figures(path.parent.parent, tmp_path, only=["fig02a"],
                           settings={"n_buckets": 2, "length": "reasoning_tokens"})
    assert (tmp_path / "fig02a.pdf").exists() and (tmp_path / "fig02a.png").exists()
    data = json.loads((tmp_path / "fig02a.json").read_text())
    assert data["cubes"]["cpu_demo"]["sha256"]
    lines = data["data"]["lines"]
    assert len(lines) == 2 and report.built["fig02a"]
    for line in lines:
        cell = ds.sel(model=line["model"], size=line["size"], budget=line["budget"])
        kl = metrics.kl_decomposition(cell["outcome"], cell["target"])
        length = cell["reasoning_tokens"].mean("draw").values
        order = np.argsort(length, kind="stable")
        halves = [order[:2], order[2:]]
        for b, idx in enumerate(halves):
            expected = kl["variance"].values[idx].sum() / kl["error"].values[idx].sum()
            assert line["kl_incoherence"][b] == pytest.approx(expected, rel=1e-9, abs=1e-12)
            assert line["x"][b] == pytest.approx(length[idx].mean())


def test_killed_run_resumes_to_the_same_cube(tiny_cube, tmp_path):
    _, full = tiny_cube
    out = tmp_path / "resumed"
    cmd = [sys.executable, "-m", "hotmess.cli", "run", *TINY, f"out_dir={out}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    parts = out / "cpu_demo" / "parts"
    deadline = time.monotonic() + 900  # a guard against a hung run; a loaded machine needs minutes
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list(parts.glob("*/chunk*.nc"))) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    n_before = len(list(parts.glob("*/chunk*.nc")))
    assert 3 <= n_before < 8 and not (out / "cpu_demo" / "cube.nc").exists()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    resumed = xr.open_dataset(out / "cpu_demo" / "cube.nc").load()
    for name in ("outcome", "reasoning_tokens", "output_tokens", "finish_reason", "format_error", "seed"):
        xr.testing.assert_equal(resumed[name], full[name])
    for name in ("text", "reasoning_text", "answer"):
        assert (resumed[name].values == full[name].values).all(), name
