"""Metric defects of issue 15 (each test failed on the code before the fix) and the fast paths.

Expected values are computed by hand in the comments, or by a second implementation: the
straightforward resampling bootstrap (copies of the resampled draws), a chunked (dask) cube
against the in-memory one, and small blocks against one block.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import xarray as xr

from hotmess.core import metrics as M
from hotmess.core.metrics import _kernels

DIMS = ("question", "draw", "option")
A, B, C_, D = np.eye(4)
U = np.full(4, 0.25)  # a format error: the uniform vector


def one(draws, target=0, squeeze=True):
    p = xr.DataArray(np.asarray([draws], float), dims=DIMS, coords={"question": ["q0"]})
    t = xr.DataArray([target], dims="question", coords={"question": ["q0"]})
    return (p.isel(question=0), t.isel(question=0)) if squeeze else (p, t)


# ---------------------------------------------------------------- ties (format errors)


def test_all_format_error_question_scores_one_over_c():
    # before: the uniform vector's argmax went to option A: accuracy 1.0, 0/1 bias 0
    p, t = one([U] * 5, 0)
    assert float(M.accuracy(p, t)) == pytest.approx(0.25)
    ds = M.zero_one_decomposition(p, t)
    # every draw and the main prediction are uniform 4-way ties:
    # loss = 3/4, bias = P(c̄ != A) = 3/4, variance = P(c̄ != ĉ) = 3/4, net variance 0
    assert float(ds.error) == pytest.approx(0.75)
    assert float(ds.bias) == pytest.approx(0.75)
    assert float(ds.variance) == pytest.approx(0.75)
    assert float(ds.net_variance) == pytest.approx(0.0, abs=1e-15)
    assert float(ds.main_prediction) == -1.0 and int(ds.main_ties) == 4
    assert ds.attrs["ties"] == M.TIE_RULE == "fractional"
    # the same question padded to 2 options of a 4-option cube: 1/2, whatever the target
    p2 = p.copy(data=np.broadcast_to([0.5, 0.5, np.nan, np.nan], p.shape).copy())
    for target in (0, 1):
        assert float(M.accuracy(p2, t * 0 + target)) == pytest.approx(0.5)


def test_format_errors_do_not_vote_for_a():
    # target A, 10 draws of B and 20 format errors (before: accuracy 20/30 = 0.667)
    p, t = one([B] * 10 + [U] * 20, 0)
    # P(correct) = (10 * 0 + 20 * 1/4) / 30 = 1/6
    assert float(M.accuracy(p, t)) == pytest.approx(1 / 6)
    ds = M.zero_one_decomposition(p, t)
    # mean vector: B = (10 + 20/4)/30 = 1/2, others 1/6 -> c̄ = B: bias 1
    # variance = 1 - P(ĉ = B) = 1 - (10 + 5)/30 = 1/2 ; net variance = 5/6 - 1 = -1/6
    assert (float(ds.error), float(ds.bias), float(ds.variance)) == pytest.approx((5 / 6, 1.0, 0.5))
    assert float(ds.net_variance) == pytest.approx(-1 / 6)
    assert float(ds.main_prediction) == 1.0


def test_main_prediction_tie_221_split():
    # 5 draws A, A, B, B, C: the main prediction ties between A and B (before: always A)
    p, t = one([A, A, B, B, C_], 0)
    ds = M.zero_one_decomposition(p, t)
    # loss = 3/5 ; bias = P(c̄ != A) = 1/2 ; variance = 1 - (1/2 * 2/5 + 1/2 * 2/5) = 3/5
    assert (float(ds.error), float(ds.bias), float(ds.variance)) == pytest.approx((0.6, 0.5, 0.6))
    assert float(ds.sign) == pytest.approx(0.0)  # E[±1] with c̄ right half the time
    assert float(ds.net_variance) == pytest.approx(0.1)
    assert float(ds.error) == pytest.approx(float(ds.bias + ds.net_variance))
    assert float(ds.main_prediction) == -1.0 and int(ds.main_ties) == 2
    # target C: c̄ is never C -> bias 1 ; loss 4/5 ; variance unchanged
    ds = M.zero_one_decomposition(*one([A, A, B, B, C_], 2))
    assert (float(ds.error), float(ds.bias), float(ds.variance)) == pytest.approx((0.8, 1.0, 0.6))
    # the tie rule does not depend on option order: relabel B <-> A, target B
    ds2 = M.zero_one_decomposition(*one([B, B, A, A, C_], 1))
    assert (float(ds2.error), float(ds2.bias), float(ds2.variance)) == pytest.approx((0.6, 0.5, 0.6))


# ---------------------------------------------------------------- median split


def test_overthinking_same_questions_in_both_halves():
    # q0 lengths [1, 5, 5, 5]: median 5; before (ties="exclude") q0 had no long draw and
    # left only the long half. Paper rule: short {1}, long {5, 5, 5}.
    # q1 lengths [1, 2, 3, 4]: short {1, 2}, long {3, 4}.
    # q2 lengths [4, 4, 4, 4]: no draw below the median -> leaves both halves.
    draws = [[A, B, B, A], [A, A, B, B], [A, A, A, A]]
    p = xr.DataArray(np.array(draws), dims=DIMS, coords={"question": ["q0", "q1", "q2"]})
    t = xr.DataArray([0, 0, 0], dims="question", coords={"question": p.question.values})
    L = xr.DataArray([[1.0, 5, 5, 5], [1, 2, 3, 4], [4, 4, 4, 4]], dims=("question", "draw"),
                     coords={"question": p.question.values})
    out = M.overthinking(p, t, L)
    np.testing.assert_array_equal(out.n_questions, [2, 2])
    np.testing.assert_array_equal(out.n_dropped, [1, 1])
    # short: q0 {A} -> 1, q1 {A, A} -> 1 ; long: q0 {B, B, A} -> 1/3, q1 {B, B} -> 0
    np.testing.assert_allclose(out.accuracy, [1.0, (1 / 3 + 0) / 2])
    np.testing.assert_allclose(out.length, [(1 + 1.5) / 2, (5 + 3.5) / 2])
    assert bool(out.question_accuracy.sel(question="q2").isnull().all())


# ---------------------------------------------------------------- option handling for builders


def test_cells_run_counts_padded_questions():
    # q0: 4 options ; q1: 2 options padded to 4 ; q2: not run
    p = xr.DataArray(np.full((3, 2, 4), np.nan), dims=DIMS, coords={"question": ["q0", "q1", "q2"]})
    p[0] = [[0.1, 0.2, 0.3, 0.4], [0.25] * 4]
    p[1] = [[0.5, 0.5, np.nan, np.nan], [1.0, 0.0, np.nan, np.nan]]
    np.testing.assert_array_equal(M.cells_run(p).values, [True, True, False])
    np.testing.assert_array_equal(
        M.present_options(p).values, [[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]]
    )
    # the old builder idiom dropped q1
    assert not bool(p.notnull().all("option").any("draw")[1])
    # exactly where the decompositions are defined
    t = xr.DataArray([3, 1, 0], dims="question", coords={"question": p.question.values})
    np.testing.assert_array_equal(M.kl_decomposition(p, t).bias.notnull(), M.cells_run(p))


# ---------------------------------------------------------------- fast paths = second implementations


def messy_cube(seed=0, shape=(2, 3, 7, 9, 4)):
    """(model, budget, question, draw, option) with one-hot, uniform, Dirichlet draws, a padded
    question, missing draws and a question not run in one cell."""
    rng = np.random.default_rng(seed)
    *lead, C = shape
    p = rng.dirichlet(np.ones(C), size=tuple(lead))
    kind = rng.integers(0, 3, size=tuple(lead))
    p = np.where((kind == 1)[..., None], np.eye(C)[rng.integers(0, C, size=tuple(lead))], p)
    p = np.where((kind == 2)[..., None], 1.0 / C, p)
    p[:, :, 1, :, 2:] = np.nan  # question 1 has 2 options
    p[:, :, 1] = np.where(np.isnan(p[:, :, 1]), np.nan, 0.5)
    p[:, :, 1, ::3, :2] = [1.0, 0.0]
    p[0, 1, 2, 4:] = np.nan  # missing draws
    p[1, 2, 3] = np.nan  # question not run
    dims = ("model", "budget", "question", "draw", "option")
    coords = {"model": ["m0", "m1"], "question": [f"q{i}" for i in range(shape[2])]}
    probs = xr.DataArray(p, dims=dims, coords=coords)
    target = xr.DataArray(rng.integers(0, 2, shape[2]), dims="question", coords={"question": coords["question"]})
    return probs, target


FAMILIES = [M.kl_decomposition, M.brier_decomposition, M.zero_one_decomposition,
            functools.partial(M.kl_decomposition, delta=1e-6)]


@pytest.mark.parametrize("fn", FAMILIES)
def test_small_blocks_equal_one_block(fn, monkeypatch):
    probs, target = messy_cube(1)
    whole = fn(probs, target)
    monkeypatch.setattr(_kernels, "BLOCK_ELEMENTS", 40)  # one question-cell per block
    xr.testing.assert_allclose(fn(probs, target), whole, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("fn", FAMILIES)
def test_bootstrap_draws_weights_equal_resampling(fn):
    probs, target = messy_cube(2)
    kw = dict(n_boot=9, rng=7)
    w = M.bootstrap_draws(fn, probs, target, [1, 3, 12], method="weights", **kw)
    r = M.bootstrap_draws(fn, probs, target, [1, 3, 12], method="resample", **kw)
    assert w.attrs["method"] == "weights" and r.attrs["method"] == "resample"
    assert set(w.data_vars) == set(r.data_vars)
    xr.testing.assert_allclose(w, r, rtol=0, atol=1e-12)
    # blocking of the questions does not change the random stream
    small = M.bootstrap_draws(fn, probs, target, [1, 3, 12], max_elements=1, **kw)
    xr.testing.assert_allclose(small, w, rtol=0, atol=1e-12)


def test_bootstrap_draws_resample_by_hand():
    # one question, draws A and B, target A; resampling 1 draw: each replicate is A or B,
    # accuracy 1 or 0; the replicate mean is the fraction of A replicates
    p, t = one([A, B], 0, squeeze=False)
    out = M.bootstrap_draws(M.zero_one_decomposition, p, t, [1], n_boot=400, rng=0)
    k = np.random.default_rng(0).integers(0, 2, size=(1, 1, 400, 1))  # the documented stream
    frac_b = float((k == 1).mean())
    assert float(out.error.sel(n_draws=1)) == pytest.approx(frac_b, abs=1e-12)
    assert float(out.error_lower[0]) == 0.0 and float(out.error_upper[0]) == 1.0


def test_bootstrap_questions_weights_equal_copies():
    rng = np.random.default_rng(3)
    var = xr.DataArray(rng.uniform(0, 1, (3, 50)), dims=("model", "question"))
    var[1, 4] = np.nan
    ds = xr.Dataset({"variance": var, "error": var + rng.uniform(0, 1, (3, 50))})
    copy = M.bootstrap_questions(ds, lambda d: M.incoherence(d.variance, d.error), n_boot=250, rng=1, chunk=60)

    def weighted(d, weights=None):
        return M.incoherence(d.variance, d.error, weights=weights)

    w = M.bootstrap_questions(ds, weighted, n_boot=250, rng=1, chunk=60)
    assert w.attrs["method"] == "weights" and copy.attrs["method"] == "resample"
    xr.testing.assert_allclose(w, copy, rtol=0, atol=1e-12)


def test_dask_chunked_cube_gives_the_same_numbers(tmp_path):
    pytest.importorskip("dask")
    probs, target = messy_cube(4)
    path = tmp_path / "cube.nc"
    xr.Dataset({"outcome": probs, "target": target}).to_netcdf(path)
    with xr.open_dataset(path, chunks={"question": 2, "draw": 4}) as ds:
        assert ds.outcome.chunks is not None
        for fn in FAMILIES[:3]:
            xr.testing.assert_allclose(fn(ds.outcome, ds.target), fn(probs, target), rtol=1e-13)
        np.testing.assert_allclose(M.accuracy(ds.outcome, ds.target), M.accuracy(probs, target))
        kl_lazy = M.kl_decomposition(ds.outcome, ds.target)
        kl = M.kl_decomposition(probs, target)
        np.testing.assert_allclose(
            M.incoherence(kl_lazy.variance.chunk({"question": 3}), kl_lazy.error), M.incoherence(kl.variance, kl.error)
        )
        a = M.bootstrap_draws(M.brier_decomposition, ds.outcome, ds.target, [5], n_boot=6, rng=2)
        b = M.bootstrap_draws(M.brier_decomposition, probs, target, [5], n_boot=6, rng=2)
        xr.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
        bad = ds.outcome.where(ds.outcome.question != "q5", 0.3)
        with pytest.raises(ValueError, match="question='q5'"):
            M.kl_decomposition(bad, ds.target)


def test_kl_against_textbook_formula_on_messy_cube():
    # the kernel uses variance = -log Σ exp E log f̂ ; check it against E KL(f̄ || f̂) directly
    probs, target = messy_cube(5)
    ds = M.kl_decomposition(probs, target)
    for cell in [dict(model=0, budget=1, question=2), dict(model=1, budget=0, question=1)]:
        x = probs.isel(cell).values
        x = x[:, ~np.isnan(x).all(0)]
        x = x[~np.isnan(x).any(1)]
        C = x.shape[1]
        fh = (x + 1e-12) / (1 + C * 1e-12)
        g = np.exp(np.log(fh).mean(0))
        fbar = g / g.sum()
        var = np.mean([(fbar * np.log(fbar / f)).sum() for f in fh])
        tgt = int(target.isel(question=cell["question"]))
        assert float(ds.variance.isel(cell)) == pytest.approx(var, rel=1e-9, abs=1e-13)
        assert float(ds.bias.isel(cell)) == pytest.approx(-math.log(fbar[tgt]), rel=1e-10)


def test_entries_within_tolerance_are_clipped_and_beyond_it_refused():
    # -5e-7 and 1 + 5e-7 are within PROB_ATOL (1e-6) of [0, 1]: read as 0 and 1
    p, t = one([[1 + 5e-7, -5e-7, 0.0, 0.0], [0.25] * 4], 0)
    q, _ = one([[1.0, 0.0, 0.0, 0.0], [0.25] * 4], 0)
    for fn in (M.kl_decomposition, M.brier_decomposition, M.zero_one_decomposition):
        xr.testing.assert_allclose(fn(p, t), fn(q, t), rtol=1e-5, atol=2e-6)
    bad, _ = one([[1.00002, -0.00002, 0.0, 0.0]], 0)
    for fn in (M.kl_decomposition, M.brier_decomposition, M.zero_one_decomposition):
        with pytest.raises(ValueError, match="not a probability vector"):
            fn(bad, t)


@pytest.mark.parametrize("fn", FAMILIES + [M.accuracy])
def test_check_false_gives_the_same_numbers_with_missing_data(fn):
    # check=False skips the probability checks only: NaN draws and padding still handled
    probs, target = messy_cube(6)
    a, b = fn(probs, target), fn(probs, target, check=False)
    if isinstance(a, xr.Dataset):
        xr.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_validate_probabilities_once():
    probs, target = messy_cube(7)
    assert M.validate_probabilities(probs, target) is None
    bad = probs.copy()
    bad[dict(model=1, budget=2, question=4, draw=0)] = [0.5, 0.6, 0.0, 0.0]
    with pytest.raises(ValueError, match="question='q4'"):
        M.validate_probabilities(bad)
    # target on a padded option (question 1 has options A, B only)
    with pytest.raises(ValueError, match="padding"):
        M.validate_probabilities(probs, target.where(target.question != "q1", 3))
    # without checks a negative entry still surfaces in KL (NaN log -> checked redo)
    neg = probs.copy()
    neg[dict(model=0, budget=0, question=0, draw=1)] = [1.2, -0.2, 0.0, 0.0]
    with pytest.raises(ValueError, match="not a probability vector"):
        M.kl_decomposition(neg, target, check=False)
