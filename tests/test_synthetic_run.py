"""Synthetic optimizer: a tiny training run, resumption, rollouts, the cube and its figures.

All runs here are tiny (seconds on one CPU thread); the expected numbers are recomputed
from the cube with numpy, independently of hotmess.core.metrics and the figure code."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr

from hotmess.core.experiment import ConfigError
from hotmess.plugins.synthetic.experiment import (
    SynthConfig,
    make_experiment_problem,
    make_training_data,
    run_experiment,
)
from hotmess.plugins.synthetic.model import SizeSpec, build_model
from hotmess.plugins.synthetic.rollout import predict_updates, rollout
from hotmess.plugins.synthetic.train import TrainConfig, heldout_loss, train

torch.set_num_threads(1)

SIZES = [{"name": "s1", "layers": 1, "width": 16, "heads": 2}, {"name": "s2", "layers": 1, "width": 24, "heads": 2}]


@pytest.fixture(scope="module")
def data():
    cfg = SynthConfig.from_mapping({"sizes": SIZES, "data": {"trajectories": 40, "trajectory_steps": 100}})
    p = make_experiment_problem(cfg, 0)
    tr, te = make_training_data(cfg, p, 0)
    return p, torch.from_numpy(tr), torch.from_numpy(te)


def test_training_data_split_and_layout(data):
    _, tr, te = data
    # 40 trajectories, 10% (4) held out, 100 pairs each, 56 tokens per pair
    assert tuple(tr.shape) == (3600, 56) and tuple(te.shape) == (400, 56)
    assert set(tr[:, [0, 7, 28, 35]].unique().tolist()) <= {10, 11}  # sign tokens by position


def test_tiny_training_lowers_the_loss(data):
    _, tr, te = data
    m = build_model(SizeSpec("t", 1, 16, 2), 12, 56, seed=0)
    before = heldout_loss(m, te[:512].long(), 28)
    # near-uniform initial logits: cross-entropy ~ ln(12)
    assert before == pytest.approx(math.log(12), abs=0.05)
    hist = train(m, tr, te, TrainConfig(steps=80, batch_size=32, lr=3e-3, warmup=10, eval_every=40,
                                        checkpoint_every=40, eval_pairs=512), seed=0, n_x=28)
    assert hist.eval_step == [40, 80]
    assert hist.test_loss[-1] < 0.8 * before
    assert hist.test_loss[-1] == pytest.approx(heldout_loss(m, te[:512].long(), 28))


class Killed(Exception):
    pass


def test_killed_training_resumes_identically(data, tmp_path):
    _, tr, te = data
    cfg = TrainConfig(steps=20, batch_size=16, warmup=4, eval_every=5, checkpoint_every=5, eval_pairs=64)
    ref = build_model(SizeSpec("t", 1, 16, 2), 12, 56, seed=1)
    ref_hist = train(ref, tr, te, cfg, seed=0, n_x=28)

    def kill_at_15(step, *_):
        if step == 15:
            raise Killed  # the checkpoint of step 15 is not written yet: resume from 10

    ckpt = tmp_path / "t.pt"
    m = build_model(SizeSpec("t", 1, 16, 2), 12, 56, seed=1)
    with pytest.raises(Killed):
        train(m, tr, te, cfg, seed=0, n_x=28, checkpoint=ckpt, progress=kill_at_15)
    assert torch.load(ckpt, weights_only=False)["step"] == 10
    m2 = build_model(SizeSpec("t", 1, 16, 2), 12, 56, seed=1)
    hist = train(m2, tr, te, cfg, seed=0, n_x=28, checkpoint=ckpt)
    assert hist.eval_step == ref_hist.eval_step == [5, 10, 15, 20]
    assert hist.test_loss == ref_hist.test_loss
    for a, b in zip(m2.parameters(), ref.parameters(), strict=True):
        assert torch.equal(a, b)


def test_rollout_adds_decoded_updates_and_is_batch_invariant(data):
    p, tr, te = data
    m = build_model(SizeSpec("t", 1, 16, 2), 12, 56, seed=2)
    train(m, tr, te, TrainConfig(steps=30, batch_size=32, warmup=5, eval_every=30, checkpoint_every=30, eval_pairs=64),
          seed=0, n_x=28)
    x0 = p.starts(6, np.random.default_rng(0))
    u, clamped = predict_updates(m, x0, 4)
    assert not clamped.any() and np.isfinite(u).all() and (np.abs(u) < 10).all()
    xs, steps, nclamp = rollout(m, x0, 5, 4, record_every=2)
    assert steps.tolist() == [0, 2, 4, 5]
    assert np.array_equal(xs[0], x0)
    one, _, _ = rollout(m, x0, 1, 4)
    assert np.array_equal(one[1], x0 + u)  # x_1 = x_0 + decoded u, in float64
    single, _, _ = rollout(m, x0, 5, 4, record_every=2, batch_size=1)
    assert np.array_equal(single, xs)  # a start point's rollout does not depend on its batch
    assert nclamp.tolist() == [0] * 6


def test_rollout_clamps_far_iterates(data):
    p, *_ = data
    m = build_model(SizeSpec("t", 1, 16, 2), 12, 56, seed=3)
    x0 = np.array([[20.0, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1]])
    xs, _, nclamp = rollout(m, x0, 3, 4)
    assert nclamp.tolist() == [3, 0]
    assert xs[-1, 0, 0] > 10 - 3 * 10  # the float64 iterate is kept, not clamped


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    raw = {"sizes": SIZES, "data": {"trajectories": 40, "trajectory_steps": 60},
           "train": {"steps": 40, "batch_size": 32, "warmup": 5, "eval_every": 20, "checkpoint_every": 20,
                     "eval_pairs": 128},
           "rollout": {"starts": 24, "steps": 30, "record_every": 3}}
    cfg = SynthConfig.from_mapping(raw)
    path = run_experiment(cfg, root, seed=0)
    return raw, root, path


def test_cube_layout(cube):
    _, _, path = cube
    ds = xr.open_dataset(path)
    assert dict(ds["outcome"].sizes) == {"model": 1, "size": 2, "step": 11, "question": 1, "draw": 24, "coordinate": 4}
    assert ds["step"].values.tolist() == list(range(0, 31, 3))
    assert ds["params"].values.tolist() == [[4604, 9204]]
    assert ds["train_step"].values.tolist() == [20, 40]
    # x_0 is the same start point for every size and for the teacher
    assert np.array_equal(ds["outcome"].isel(step=0, model=0, size=0), ds["teacher"].isel(step=0))
    assert np.array_equal(ds["outcome"].isel(step=0, model=0, size=1), ds["teacher"].isel(step=0))
    assert ds.attrs["experiment"] == "synthetic" and "git_revision" in ds.attrs


def test_rerun_reuses_parts_and_refuses_other_settings(cube):
    raw, root, path = cube
    before = xr.load_dataset(path)
    mtime = (root / "parts" / "s1.nc").stat().st_mtime_ns
    run_experiment(SynthConfig.from_mapping(raw), root, seed=0)
    assert (root / "parts" / "s1.nc").stat().st_mtime_ns == mtime
    assert np.array_equal(xr.load_dataset(path)["outcome"], before["outcome"])
    with pytest.raises(ConfigError, match="different settings"):  # the one manifest (hotmess.core.manifest)
        run_experiment(SynthConfig.from_mapping({**raw, "step_norm": 0.01}), root, seed=0)


def _numpy_decomposition(ds):
    x = ds["outcome"].values[0, :, :, 0]  # size, step, draw, coord
    b = ds["minimiser"].values[0]
    A = ds["hessian"].values[0]
    m = x.mean(2)
    bias = np.einsum("sti,ij,stj->st", m - b, A, m - b)
    dev = x - m[:, :, None]
    var = np.einsum("stni,ij,stnj->stn", dev, A, dev).mean(-1)
    err = np.einsum("stni,ij,stnj->stn", x - b, A, x - b).mean(-1)
    return bias, var, err


def test_figures_numbers_match_numpy(cube):
    from hotmess.paper import synthetic_figs as sf

    _, _, path = cube
    ds = xr.open_dataset(path)
    bias, var, err = _numpy_decomposition(ds)
    assert np.allclose(bias + var, err)
    assert np.allclose(ds["bias"].values[0, :, :, 0], bias)  # the stored convenience copy
    fig, nums = sf.fig02d({"synthetic": ds})
    for i, s in enumerate(["s1", "s2"]):
        assert np.allclose(nums["sizes"][s]["incoherence"], var[i] / err[i])
        slope = np.polyfit(np.arange(0, 31, 3), var[i] / err[i], 1)[0] * 100
        assert nums["slopes"][s]["slope_per_100_steps"] == pytest.approx(slope)
    # final window: the last 10% of 11 recorded steps = the last step
    fig, nums = sf.fig04c({"synthetic": ds})
    assert np.allclose(nums["incoherence"], var[:, -1] / err[:, -1])
    fig, nums = sf.fig06({"synthetic": ds})
    params = np.array([4604.0, 9204.0])
    for key, vals in (("bias", bias[:, -1]), ("variance", var[:, -1])):
        slope = np.polyfit(np.log(params), np.log(vals), 1)[0]
        assert nums[f"{key}_fit"]["alpha"] == pytest.approx(-slope)
    assert np.allclose(nums["test_loss"], ds["test_loss"].values[0])
    t_star = int(np.argmin(err[1]))  # the larger size comes closest to b at this recorded step
    assert nums["closest_approach"]["step"] == 3 * t_star
    slope = np.polyfit(np.log(params), np.log(bias[:, t_star]), 1)[0]
    assert nums["closest_approach"]["bias_fit"]["alpha"] == pytest.approx(-slope)
    assert nums["trajectory_size"] == "s2"  # the largest model against the teacher
    assert np.allclose(nums["trajectories"]["teacher"][0], nums["trajectories"]["s2"][0])  # same start
    assert [c["figure"] for c in nums["claims"]] == ["fig06"] * 3
    fig, nums = sf.fig26({"synthetic": ds})
    assert np.allclose(nums["per_step"]["s2"]["variance"], var[1])
    assert nums["test_loss_curves"]["s1"] == ds["test_loss_curve"].values[0, 0].tolist()
    # f(x_t) of draw 0 for each size and for the teacher: 1/2 (x - b)^T A (x - b)
    x = ds["outcome"].values[0, :, :, 0, 0]  # size, step, coord
    b, A = ds["minimiser"].values[0], ds["hessian"].values[0]
    assert np.allclose(nums["f_values"]["s1"], 0.5 * np.einsum("ti,ij,tj->t", x[0] - b, A, x[0] - b))
    t = ds["teacher"].values[:, 0, 0]
    assert np.allclose(nums["f_values"]["teacher"], 0.5 * np.einsum("ti,ij,tj->t", t - b, A, t - b))
    # leaving the teacher: first recorded step farther than 10 * 0.005 from the teacher's iterate
    d = np.linalg.norm(ds["outcome"].values[0, 1, :, 0] - ds["teacher"].values[:, 0], axis=-1)  # step, draw
    first = np.where((d > 0.05).any(0), ds["step"].values[(d > 0.05).argmax(0)], 30)
    assert nums["tracking"]["s2"]["median_exit_step"] == pytest.approx(np.median(first))
    for name in ("fig02d", "fig04c"):
        _, n = getattr(sf, name)({"synthetic": ds})
        assert n["claims"] and all(c["verdict"] in ("agrees", "disagrees", "not enough data") for c in n["claims"])
