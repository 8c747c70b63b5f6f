"""Diagnosis quantities of the synthetic optimizer (plugins/synthetic/diagnose.py), the claim
statistics of its figures and the compute-study summary. Expected values come from hand-built
models, hand-built trajectories and closed forms, not from the code under test."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import xarray as xr
from torch import nn

from hotmess.plugins.synthetic.diagnose import (
    first_exit,
    position_names,
    quantisation_error,
    rollout_distance,
    step_error,
    token_accuracy,
)
from hotmess.plugins.synthetic.encoding import MINUS, PLUS
from hotmess.plugins.synthetic.problem import make_problem, teacher_trajectories
from hotmess.plugins.synthetic.train import encode_pairs

torch.set_num_threads(1)


class CopyPrevious(nn.Module):
    """Predicts that the next token repeats the current one (a hand-built model)."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, tokens):
        return 5.0 * F.one_hot(tokens, 12).float() + 0.0 * self.dummy


def test_token_accuracy_of_a_copy_model_by_hand():
    p = make_problem(np.random.default_rng(0))
    xs, us = teacher_trajectories(p, p.starts(20, np.random.default_rng(1)), 30, 0.005)
    x, u = xs[:-1].reshape(-1, 4), us.reshape(-1, 4)
    tok = encode_pairs(x, u, 4)
    acc = token_accuracy(CopyPrevious(), tok, 4, 4)
    ut = tok[:, 28:].reshape(-1, 4, 7)
    prev = tok[:, 27:-1].reshape(-1, 4, 7)  # the token before each u token
    want = (ut == prev).astype(float)
    # sign positions: the previous token is a digit, not allowed there; all allowed logits tie at 0
    # and argmax takes the first allowed id, MINUS (10)
    want[:, :, 0] = ut[:, :, 0] == MINUS
    assert np.allclose(acc["per_token"], want.mean(0))
    assert np.allclose(acc["per_field"], want.mean((0, 2)))
    assert acc["per_position"]["sign"] == pytest.approx(float((ut[:, :, 0] == MINUS).mean()))
    assert acc["per_position"]["m0"] == pytest.approx(float(want[:, :, 2].mean()))
    assert acc["float_exact"] == pytest.approx(want.all(2).mean(0).tolist())
    assert acc["pair_exact"] == pytest.approx(float(want.all((1, 2)).mean()))
    assert acc["n"] == len(x)
    assert position_names(4) == ["sign", "exp", "m0", "m1", "m2", "m3", "m4"]
    assert {MINUS, PLUS} >= set(np.unique(ut[:, :, 0]))


def test_step_error_hand_cases():
    ut = np.array([[0.003, 0.004], [0.005, 0.0], [0.0, -0.005], [0.003, -0.004]])
    um = np.array([[-0.004, 0.003],   # rotated 90 degrees: cos 0, relative error sqrt(2)
                   [0.010, 0.0],      # twice as long: cos 1, relative error 1, norm ratio 2
                   [0.0, 0.005],      # reversed: cos -1, relative error 2
                   [0.003, -0.004]])  # exact
    e = step_error(um, ut)
    rel = np.array([np.sqrt(2), 1.0, 2.0, 0.0])
    cos = np.array([0.0, 1.0, -1.0, 1.0])
    assert e["rel_error"]["mean"] == pytest.approx(rel.mean())
    assert e["rel_error"]["median"] == pytest.approx(np.median(rel))
    assert e["cosine"]["mean"] == pytest.approx(cos.mean())
    assert e["norm_ratio"]["median"] == pytest.approx(1.0)  # ratios 1, 2, 1, 1
    assert e["wrong_direction"] == 0.25
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [0.1, 0.0]])
    e = step_error(um, ut, x, np.zeros(2), bins=np.array([0.0, 0.5, np.inf]))
    near, far = e["by_distance"]
    assert (near["n"], far["n"]) == (2, 2)  # distances 0, 0.1 | 1, 3
    assert near["rel_error_median"] == pytest.approx(np.median([np.sqrt(2), 0.0]))
    assert far["cosine_median"] == pytest.approx(0.0)  # median of 1 and -1


def test_first_exit_and_rollout_distance_by_hand():
    dist = np.array([[0.0, 0.0, 0.0], [0.01, 0.2, 0.0], [0.5, 0.3, 0.0], [0.02, 0.9, 0.01]])
    ex = first_exit(dist, 0.05)
    assert ex[0] == 2 and ex[1] == 1 and np.isnan(ex[2])
    # model = teacher + offset along coordinate 0 given by `dist`; teacher at distance 1 from b
    b = np.zeros(2)
    teacher = np.zeros((4, 3, 2))
    teacher[..., 1] = 1.0
    model = teacher.copy()
    model[..., 0] = dist
    r = rollout_distance(model, teacher, b, np.array([0, 4, 8, 12]), 0.005, exit_teacher_steps=10)
    assert r["to_teacher"]["median"] == pytest.approx(np.median(dist, axis=1).tolist())
    assert r["teacher_to_min"]["median"] == [1.0] * 4
    assert r["model_to_min"]["median"][1] == pytest.approx(np.median(np.hypot(dist[1], 1.0)))
    assert r["exit_step_median"] == 6.0  # steps 8 and 4 (the third start never leaves)
    assert r["stayed"] == pytest.approx(1 / 3)


def test_quantisation_error_hand_case():
    q = quantisation_error(np.array([[0.123456, 1.0], [-2.000049, 0.5]]), 4)
    assert q["max_abs_coordinate"] == pytest.approx(4.9e-5)  # -2.000049 -> -2.0000
    assert q["max_point_norm"] == pytest.approx(4.9e-5)


def test_ball_starts_fill_the_ball():
    p = make_problem(np.random.default_rng(3))
    x = p.ball_starts(20000, 0.8, np.random.default_rng(4))
    r = np.linalg.norm(x - p.b, axis=1)
    assert r.max() <= 0.8
    # uniform in a 4-ball: P(r < R/2) = 1/16; the mean is b
    assert (r < 0.4).mean() == pytest.approx(1 / 16, abs=0.006)
    assert np.abs(x.mean(0) - p.b).max() < 0.01


def test_diagnose_runs_on_a_real_model():
    from hotmess.plugins.synthetic.diagnose import diagnose
    from hotmess.plugins.synthetic.model import SizeSpec, build_model

    p = make_problem(np.random.default_rng(0))
    xs, us = teacher_trajectories(p, p.starts(4, np.random.default_rng(1)), 10, 0.005)
    m = build_model(SizeSpec("t", 1, 16, 2), 12, 56, seed=0)
    out = diagnose(m, p, xs[:-1].reshape(-1, 4), us.reshape(-1, 4), p.starts(3, np.random.default_rng(2)),
                   precision=4, step_norm=0.005, rollout_steps=6, record_every=2)
    assert out["rollout"]["step"] == [0, 2, 4, 6]
    assert out["rollout"]["to_teacher"]["median"][0] == 0.0  # same start
    assert out["token_accuracy"]["n"] == 40
    json.dumps(out)


# --------------------------------------------------------------------------- claim statistics
def constructed_cube(bias_final, var_final, params, loss):
    """A cube with known final bias^2 and variance per size: A = diag(1, 2), b = 0;
    draws x = c_k + s_k z with z in {+-e1, +-e2} (mean 0, E z^T A z = 1.5), so bias = c^T A c and
    variance = 1.5 s^2; the mean offset c shrinks linearly over steps to its final value."""
    A = np.diag([1.0, 2.0])
    z = np.array([[1, 0], [-1, 0], [0, 1], [0, -1]], float)
    steps = np.arange(0, 50, 5)
    n_s = len(params)
    out = np.zeros((1, n_s, len(steps), 1, 4, 2))
    for k in range(n_s):
        s = np.sqrt(var_final[k] / 1.5)
        for t in range(len(steps)):
            c = np.sqrt(bias_final[k]) * (1 + 9 * (1 - t / (len(steps) - 1)))  # 10x at step 0
            out[0, k, t, 0] = np.array([c, 0.0]) + s * z
    teacher = out[0, -1].copy()
    ds = xr.Dataset(
        {"outcome": (("model", "size", "step", "question", "draw", "coordinate"), out),
         "teacher": (("step", "question", "draw", "coordinate"), teacher),
         "minimiser": (("question", "coordinate"), np.zeros((1, 2))),
         "hessian": (("question", "coordinate", "coordinate2"), A[None]),
         "test_loss": (("model", "size"), np.asarray(loss, float)[None])},
        coords={"model": ["transformer"], "size": [f"s{k}" for k in range(n_s)],
                "params": (("model", "size"), np.asarray(params)[None]), "step": steps,
                "question": ["q"], "draw": np.arange(4), "coordinate": [0, 1], "coordinate2": [0, 1]},
        attrs={"task_info": json.dumps({"synthetic": {"step_norm": 0.005}})})
    return ds


def test_claim_statistics_on_a_constructed_cube():
    from hotmess.paper import synthetic_figs as sf

    params = np.array([1e3, 1e4, 1e5])
    bias = 0.5 * params ** -1.0 * 1e3   # alpha 1
    var = 0.2 * params ** -0.25 * 1e3 ** 0.25  # alpha 0.25
    loss = 3.0 * params ** -0.2
    ds = constructed_cube(bias, var, params, loss)
    st = sf.claim_statistics(ds, {"final_window": 0.1})  # last of 10 steps
    assert st["final_bias"] == pytest.approx(bias.tolist())
    assert st["final_variance"] == pytest.approx(var.tolist())
    assert st["bias_fit"]["alpha"] == pytest.approx(1.0)
    assert st["variance_fit"]["alpha"] == pytest.approx(0.25)
    assert st["test_loss_fit"]["alpha"] == pytest.approx(0.2) and st["test_loss_fit"]["r2"] == pytest.approx(1.0)
    inc = var / (bias + var)
    assert st["final_incoherence"] == pytest.approx(inc.tolist())
    assert st["incoherence_size_slope"] == pytest.approx(np.polyfit(np.log10(params), inc, 1)[0])
    # the largest size is the teacher here: it never leaves it
    assert st["tracking"]["s2"]["never_left"] == 1.0
    verdicts = {c.paper: c.verdict for c in (sf.claims_step("x", st), sf.claims_size("x", st),
                                             sf.claims_loss("x", st), sf.claims_bias("x", st))}
    assert set(verdicts.values()) == {"agrees"}
    # reversed trends disagree
    st2 = sf.claim_statistics(constructed_cube(var[::-1] * 0 + bias[::-1], var, params, loss[::-1]))
    assert sf.claims_loss("x", st2).verdict == "disagrees"
    assert sf.claims_size("x", st2).verdict == "disagrees"
    # bias and variance both growing with size (alpha < 0), bias more slowly: the gap is > 0 but
    # scale does not *reduce* bias, so the claim disagrees
    st3 = sf.claim_statistics(constructed_cube(params ** 0.5 * 1e-3, params ** 0.9 * 1e-4, params, loss))
    assert st3["bias_fit"]["alpha"] == pytest.approx(-0.5) and st3["variance_fit"]["alpha"] == pytest.approx(-0.9)
    assert sf.claims_bias("x", st3).verdict == "disagrees"


def test_compute_summary_cube_and_figure(tmp_path):
    from hotmess.paper import synthetic_compute_fig as cf

    params = np.array([1e3, 1e4, 1e5])
    runs = []
    for budget, gap in ((100, -0.5), (1000, 0.5)):
        for seed in (1, 2, 3):
            bias = params ** -(0.5 + gap) * 10.0
            var = params ** -0.5 * (1 + 0.01 * seed)
            runs.append((budget, seed, constructed_cube(bias, var, params, 3.0 * params ** -0.2)))
    ds = cf.summary_cube(runs)
    assert dict(ds.sizes) == {"budget": 2, "train_seed": 3, "size": 3}
    st = cf.run_statistics(ds)
    assert st["alpha_gap"][0] == pytest.approx([-0.5] * 3)
    assert st["alpha_gap"][1] == pytest.approx([0.5] * 3)
    fig, nums = cf.figsyn_compute({"synthetic_compute": ds})
    gap = next(c for c in nums["claims"] if "bias" in c["paper"])
    assert gap["value"] == "3/3 seeds" and gap["verdict"] == "agrees"
    assert "100 steps: 0/3" in gap["detail"]
    # the summary cube written by `synthetic_study.py summary` goes through `hotmess paper`
    # (a "summary" kind cube: the build checks it and builds the figure from it)
    from hotmess.paper import build

    for budget, seed, cube in runs:
        d = tmp_path / "study" / f"steps{budget}_seed{seed}"
        d.mkdir(parents=True)
        cube.to_netcdf(d / "cube.nc")
    written = cf.write_summary(tmp_path / "study")
    results = tmp_path / "results"
    (results / "synthetic_compute").mkdir(parents=True)
    written.rename(results / "synthetic_compute" / "cube.nc")
    rep = build.build_figures(results, tmp_path / "figs", only=["figsyn_compute"], index=False)
    assert list(rep.built) == ["figsyn_compute"] and not rep.failed, rep.failed
    out = json.loads((tmp_path / "figs" / "figsyn_compute.json").read_text())
    assert out["data"]["budget"] == [100.0, 1000.0] and out["data"]["alpha_gap"][1] == pytest.approx([0.5] * 3)


@pytest.mark.parametrize("extra, check", [
    ({"start_spread": 0.2}, "spread"),
    ({"start_radius": 0.3}, "ball"),
    ({}, "default"),
])
def test_training_start_distributions(extra, check):
    from hotmess.plugins.synthetic.encoding import decode
    from hotmess.plugins.synthetic.experiment import (
        SynthConfig,
        make_experiment_problem,
        make_training_data,
    )

    cfg = SynthConfig.from_mapping({"sizes": [{"name": "a", "layers": 1, "width": 16, "heads": 2}],
                                    "data": {"trajectories": 400, "trajectory_steps": 2, **extra}})
    p = make_experiment_problem(cfg, 0)
    tr, _ = make_training_data(cfg, p, 0)
    x0 = decode(tr[:360, :28].reshape(360, 4, 7), 4)  # pairs ordered by (step, trajectory): step 0 first
    if check == "ball":
        r = np.linalg.norm(x0 - p.b, axis=1)
        assert r.max() <= 0.3 + 1e-4 and r.min() > 0.0
    else:
        spread = 0.2 if check == "spread" else 0.05  # problem.start_spread's default
        assert np.std(x0 - p.start_center) == pytest.approx(spread, rel=0.06)


def test_near_fraction_mixes_a_ball_around_the_minimiser_into_the_tube():
    """near_fraction=0.25: a quarter of the training starts lie in the ball of near_radius
    around b, the rest in the tube around start_center (their distance to b ~ start_distance);
    counted by hand from the decoded step-0 pairs."""
    from hotmess.core.seeding import derive_seed
    from hotmess.plugins.synthetic.encoding import decode
    from hotmess.plugins.synthetic.experiment import (
        SynthConfig,
        make_experiment_problem,
        make_training_data,
        training_starts,
    )

    cfg = SynthConfig.from_mapping({"sizes": [{"name": "a", "layers": 1, "width": 16, "heads": 2}],
                                    "data": {"trajectories": 400, "trajectory_steps": 2, "start_spread": 0.02,
                                             "near_fraction": 0.25, "near_radius": 0.1}})
    p = make_experiment_problem(cfg, 0)
    x0 = training_starts(cfg, p, 400, np.random.default_rng(derive_seed(0, "train-starts", 0)))
    r = np.linalg.norm(x0 - p.b, axis=1)
    near = r <= 0.1 + 1e-12
    assert near.sum() == 100  # round(0.25 * 400)
    far = np.linalg.norm(x0[~near] - p.start_center, axis=1)
    assert far.max() < 0.02 * 6  # the tube: spread 0.02 per coordinate
    # the training data starts there (step-0 pairs of the 360 training trajectories, rounded to 5 digits)
    tr, te = make_training_data(cfg, p, 0)
    assert np.allclose(decode(tr[:360, :28].reshape(360, 4, 7), 4), x0[:360], atol=5e-5)
    # both kinds reach the held-out split (the order is shuffled)
    assert 0 < near[360:].sum() < 40
    # near_fraction = 0 draws exactly the old starts
    cfg0 = SynthConfig.from_mapping({"sizes": [{"name": "a", "layers": 1, "width": 16, "heads": 2}],
                                     "data": {"trajectories": 400, "start_spread": 0.02}})
    a = training_starts(cfg0, p, 400, np.random.default_rng(5))
    b = p.start_center + 0.02 * np.random.default_rng(5).standard_normal((400, 4))
    assert np.array_equal(a, b)
    for bad, msg in (({"near_fraction": 1.5}, "near_fraction"), ({"near_radius": 0.0}, "near_radius")):
        c = SynthConfig.from_mapping({"sizes": [{"name": "a", "layers": 1, "width": 16, "heads": 2}], "data": bad})
        with pytest.raises(ValueError, match=msg):
            training_starts(c, p, 10, np.random.default_rng(0))
