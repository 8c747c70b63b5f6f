"""Tests of hotmess.core.metrics (the paper's section 1, docs/science.md).

Expected values are hand-computed (written out below) or come from a plain-loop numpy
reference written here independently of the xarray code; identities are checked on random
data; vectorisation is checked against a loop over the extra dims.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import xarray as xr

from hotmess.core import metrics as M

DIMS = ("question", "draw", "option")


def mc(draws, target=0):
    """One question (scalar coordinate question='q0'): draws is a list of probability vectors."""
    p = xr.DataArray(np.asarray([draws], float), dims=DIMS, coords={"question": ["q0"]})
    t = xr.DataArray([target], dims="question", coords={"question": ["q0"]})
    return p.isel(question=0), t.isel(question=0)


def random_cube(rng, shape=(2, 3, 2, 5, 7, 4), onehot_frac=0.3):
    """A (model, size, budget, question, draw, option) cube of Dirichlet/one-hot vectors."""
    *lead, C = shape
    p = rng.dirichlet(np.ones(C) * 0.7, size=tuple(lead))
    hot = rng.random(tuple(lead)) < onehot_frac
    onehot = np.eye(C)[rng.integers(0, C, size=tuple(lead))]
    p = np.where(hot[..., None], onehot, p)
    dims = ("model", "size", "budget", "question", "draw", "option")
    coords = {
        "model": [f"m{i}" for i in range(shape[0])],
        "size": [f"s{i}" for i in range(shape[1])],
        "budget": list(range(shape[2])),
        "question": [f"q{i}" for i in range(shape[3])],
    }
    probs = xr.DataArray(p, dims=dims, coords=coords)
    target = xr.DataArray(rng.integers(0, C, shape[3]), dims="question", coords={"question": coords["question"]})
    return probs, target


# ---------------------------------------------------------------- plain-loop references


def ref_kl(draws, y, delta=1e-12):
    draws = [np.asarray(d, float) for d in draws]
    C = len(y)
    fh = [(d + delta) / (1 + C * delta) for d in draws]
    m = np.mean([np.log(f) for f in fh], axis=0)
    g = np.exp(m)
    fbar = g / g.sum()
    y = np.asarray(y, float)
    bias = sum(yc * math.log(yc / fb) for yc, fb in zip(y, fbar, strict=True) if yc > 0)
    var = np.mean([sum(fb * math.log(fb / fc) for fb, fc in zip(fbar, f, strict=True)) for f in fh])
    ce = np.mean([-sum(yc * math.log(fc) for yc, fc in zip(y, f, strict=True)) for f in fh])
    return bias, var, ce


def ref_brier(draws, y, delta=1e-12):
    C = len(y)
    fh = [(np.asarray(d, float) + delta) / (1 + C * delta) for d in draws]
    fbar = np.mean(fh, axis=0)
    y = np.asarray(y, float)
    return (
        float(((y - fbar) ** 2).sum()),
        float(np.mean([((fbar - f) ** 2).sum() for f in fh])),
        float(np.mean([((y - f) ** 2).sum() for f in fh])),
    )


# ---------------------------------------------------------------- smoothing


def test_smooth_hand_values_and_normalisation():
    p = xr.DataArray([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], dims=("draw", "option"))
    s = M.smooth(p, delta=0.1)
    # (1 + 0.1) / 1.4 = 0.785714..., 0.1 / 1.4 = 0.0714285...; uniform stays uniform
    np.testing.assert_allclose(s[0], [1.1 / 1.4, 0.1 / 1.4, 0.1 / 1.4, 0.1 / 1.4])
    np.testing.assert_allclose(s[1], [0.25] * 4)
    np.testing.assert_allclose(s.sum("option"), [1.0, 1.0])
    # default delta 1e-12: zeros become ~1e-12, never 0
    assert float(M.smooth(p).min()) == pytest.approx(1e-12, rel=1e-9)
    # padding (NaN) is not counted in C: a 2-option vector padded to 4
    q = xr.DataArray([1.0, 0.0, np.nan, np.nan], dims="option")
    np.testing.assert_allclose(M.smooth(q, delta=0.1)[:2], [1.1 / 1.2, 0.1 / 1.2])
    with pytest.raises(ValueError):
        M.smooth(p, delta=-1.0)


# ---------------------------------------------------------------- KL family


def test_kl_hand_computed():
    # draws [0.5, 0.5], [0.9, 0.1], target 0 (delta = 0 to match the hand numbers exactly)
    # geometric mean: sqrt(0.45) : sqrt(0.05) = 3 : 1  ->  f̄ = [0.75, 0.25]
    # bias = -log 0.75 ; Z = sqrt(.45) + sqrt(.05) = sqrt(0.8) ; variance = -log Z = -0.5 log 0.8
    # E CE = (-log 0.5 - log 0.9) / 2
    p, t = mc([[0.5, 0.5], [0.9, 0.1]], 0)
    ds = M.kl_decomposition(p, t, delta=0.0)
    assert float(ds.bias) == pytest.approx(-math.log(0.75), abs=1e-12)
    assert float(ds.variance) == pytest.approx(-0.5 * math.log(0.8), abs=1e-12)
    assert float(ds.cross_entropy) == pytest.approx((-math.log(0.5) - math.log(0.9)) / 2, abs=1e-12)
    assert float(ds.error) == pytest.approx(0.287682072 + 0.111571776, abs=1e-8)
    assert float(ds.noise) == 0.0
    assert int(ds.n_draws) == 2
    # the default delta moves these by ~1e-12 only
    d2 = M.kl_decomposition(p, t)
    assert float(d2.bias) == pytest.approx(-math.log(0.75), abs=1e-9)
    # target 1: bias = -log 0.25, variance unchanged
    p, t = mc([[0.5, 0.5], [0.9, 0.1]], 1)
    ds = M.kl_decomposition(p, t, delta=0.0)
    assert float(ds.bias) == pytest.approx(math.log(4), abs=1e-12)
    assert float(ds.variance) == pytest.approx(-0.5 * math.log(0.8), abs=1e-12)


def test_kl_identical_draws_have_zero_variance():
    p, t = mc([[0.2, 0.3, 0.5]] * 4, 2)
    ds = M.kl_decomposition(p, t)
    assert float(ds.variance) == pytest.approx(0.0, abs=1e-12)
    assert float(ds.bias) == pytest.approx(-math.log(0.5), abs=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_kl_identity_and_reference(seed):
    rng = np.random.default_rng(seed)
    probs, target = random_cube(rng)
    ds = M.kl_decomposition(probs, target)
    # identity: mean cross-entropy = KL bias + KL variance (one-hot target, H(y) = 0)
    np.testing.assert_allclose(ds.cross_entropy, ds.bias + ds.variance, rtol=1e-10, atol=1e-9)
    np.testing.assert_allclose(ds.error, ds.bias + ds.variance)
    assert (ds.variance >= -1e-12).all() and (ds.bias >= -1e-12).all()
    # against the plain-loop reference on one cell
    cell = dict(model=1, size=2, budget=0, question=3)
    draws = probs.isel(cell).values
    y = np.eye(4)[int(target[3])]
    b, v, ce = ref_kl(draws, y)
    sel = ds.isel(cell)
    assert float(sel.bias) == pytest.approx(b, rel=1e-10)
    assert float(sel.variance) == pytest.approx(v, rel=1e-9, abs=1e-12)
    assert float(sel.cross_entropy) == pytest.approx(ce, rel=1e-10)


def test_kl_general_target_identity():
    # general y: E CE = H(y) + KL(y||f̄) + E KL(f̄||f)
    rng = np.random.default_rng(7)
    probs, _ = random_cube(rng, shape=(1, 1, 1, 6, 9, 3))
    y = xr.DataArray(rng.dirichlet(np.ones(3), size=6), dims=("question", "option"),
                     coords={"question": probs.question.values})
    ds = M.kl_decomposition(probs, y)
    np.testing.assert_allclose(ds.cross_entropy, ds.noise + ds.bias + ds.variance, rtol=1e-10)
    draws = probs.isel(model=0, size=0, budget=0, question=2).values
    b, v, ce = ref_kl(draws, y[2].values)
    assert float(ds.bias.isel(model=0, size=0, budget=0, question=2)) == pytest.approx(b, rel=1e-9)
    H = -float((y[2] * np.log(y[2])).sum())
    assert float(ds.noise.isel(model=0, size=0, budget=0, question=2)) == pytest.approx(H, rel=1e-12)


# ---------------------------------------------------------------- Brier family


def test_brier_hand_computed():
    # f̃ = [0.7, 0.3]; bias = 0.3² + 0.3² = 0.18
    # variance = mean(0.2²+0.2², 0.2²+0.2²) = 0.08 ; error = mean(0.5²+0.5², 0.1²+0.1²) = 0.26
    p, t = mc([[0.5, 0.5], [0.9, 0.1]], 0)
    ds = M.brier_decomposition(p, t, delta=0.0)
    assert float(ds.bias) == pytest.approx(0.18, abs=1e-12)
    assert float(ds.variance) == pytest.approx(0.08, abs=1e-12)
    assert float(ds.error) == pytest.approx(0.26, abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_brier_identity_and_reference(seed):
    rng = np.random.default_rng(100 + seed)
    probs, target = random_cube(rng)
    ds = M.brier_decomposition(probs, target)
    np.testing.assert_allclose(ds.error, ds.bias + ds.variance, rtol=1e-10, atol=1e-14)
    cell = dict(model=0, size=1, budget=1, question=4)
    b, v, e = ref_brier(probs.isel(cell).values, np.eye(4)[int(target[4])])
    sel = ds.isel(cell)
    assert (float(sel.bias), float(sel.variance), float(sel.error)) == pytest.approx((b, v, e), rel=1e-10)


# ---------------------------------------------------------------- 0/1 family


def test_zero_one_hand_computed_two_options():
    # predictions 1, 0, 1 ; target 0 -> loss 2/3
    # mean vector [0.3667, 0.6333] -> c̄ = 1 (wrong): bias 1, variance = P(ĉ != 1) = 1/3, sign -1
    # loss = bias + sign * variance = 1 - 1/3
    p, t = mc([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], 0)
    ds = M.zero_one_decomposition(p, t)
    assert float(ds.error) == pytest.approx(2 / 3)
    assert float(ds.loss) == pytest.approx(2 / 3)
    assert float(ds.bias) == 1.0
    assert float(ds.variance) == pytest.approx(1 / 3)
    assert float(ds.sign) == -1.0
    assert float(ds.main_prediction) == 1.0
    assert float(ds.error) == pytest.approx(float(ds.bias + ds.sign * ds.variance))
    # correct main prediction: sign +1, loss = variance
    p, t = mc([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7]], 1)
    ds = M.zero_one_decomposition(p, t)
    assert (float(ds.error), float(ds.bias), float(ds.variance), float(ds.sign)) == pytest.approx(
        (1 / 3, 0.0, 1 / 3, 1.0)
    )


def test_zero_one_ties_split_fractionally_and_uniform_format_error():
    # Changed (issue 15: ties used to go to option A). A uniform vector (format error) is a
    # 4-way tie: it predicts each option with probability 1/4.
    p, t = mc([[0.25] * 4, [0.0, 0.0, 1.0, 0.0]], 0)
    ds = M.zero_one_decomposition(p, t)
    # P(correct): draw 0 -> 1/4, draw 1 -> 0 ; loss = 1 - 1/8 = 7/8
    # mean [.125,.125,.625,.125] -> c̄ = 2 (no tie) -> bias 1
    # variance = 1 - mean P(ĉ = 2) = 1 - (1/4 + 1)/2 = 3/8
    assert (float(ds.error), float(ds.bias), float(ds.variance)) == pytest.approx((7 / 8, 1.0, 3 / 8))
    assert float(ds.main_prediction) == 2.0 and int(ds.main_ties) == 1
    # a [0.4, 0.4, 0.2] tie: each of the two leaders with probability 1/2
    p, t = mc([[0.4, 0.4, 0.2]], 1)
    assert float(M.zero_one_decomposition(p, t).error) == pytest.approx(0.5)
    assert float(M.accuracy(p, t)) == pytest.approx(0.5)
    assert float(M.accuracy(p, t, ties="fractional")) == pytest.approx(0.5)
    p, t = mc([[0.25] * 4], 3)
    assert float(M.accuracy(p, t, ties="fractional")) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="favour"):
        M.accuracy(p, t, ties="lowest")


def test_zero_one_multiclass_domingos_coefficient():
    # 4 options, target 0; predictions 1, 1, 2, 0 -> c̄ = 1 (wrong)
    # loss = 3/4; bias = 1; variance = P(ĉ != 1) = 1/2
    # the paper's sign gives 1 - 1/2 = 1/2 != 3/4; Domingos' c = -P(ĉ = c* | ĉ != c̄) = -1/2
    # gives 1 - 1/4 = 3/4
    eye = np.eye(4)
    p, t = mc([eye[1], eye[1], eye[2], eye[0]], 0)
    ds = M.zero_one_decomposition(p, t)
    assert (float(ds.error), float(ds.bias), float(ds.variance)) == pytest.approx((0.75, 1.0, 0.5))
    assert float(ds.sign) == -1.0
    assert float(ds.net_coefficient) == pytest.approx(-0.5)
    assert float(ds.error) == pytest.approx(float(ds.bias + ds.net_variance))


@pytest.mark.parametrize("seed", range(3))
def test_zero_one_identity_random(seed):
    rng = np.random.default_rng(200 + seed)
    probs, target = random_cube(rng, onehot_frac=0.8)
    ds = M.zero_one_decomposition(probs, target)
    np.testing.assert_allclose(ds.error, ds.bias + ds.net_variance, atol=1e-12)
    # two options: the paper's sign form is exact
    p2, t2 = random_cube(rng, shape=(2, 2, 1, 6, 9, 2))
    d2 = M.zero_one_decomposition(p2, t2.clip(0, 1))
    np.testing.assert_allclose(d2.error, d2.bias + d2.sign * d2.variance, atol=1e-12)
    # accuracy = 1 - loss with the same tie rule
    np.testing.assert_allclose(M.accuracy(probs, target), 1 - ds.error, atol=1e-12)


def test_accuracy_hand():
    p, t = mc([[0.1, 0.9], [0.8, 0.2], [0.6, 0.4], [np.nan, np.nan]], 0)
    assert float(M.accuracy(p, t)) == pytest.approx(2 / 3)


# ---------------------------------------------------------------- missing data


@pytest.mark.parametrize("fn", [M.kl_decomposition, M.brier_decomposition, M.zero_one_decomposition])
def test_nan_draw_equals_cube_without_it(fn):
    rng = np.random.default_rng(3)
    probs, target = random_cube(rng)
    holed = probs.copy()
    holed[dict(draw=2)] = np.nan  # draw 2 not run anywhere
    holed[dict(model=0, size=1, budget=0, question=1, draw=5, option=3)] = np.nan  # partial NaN
    a = fn(holed, target)
    b = fn(probs.isel(draw=[0, 1, 3, 4, 5, 6]), target)
    cell = dict(model=0, size=1, budget=0, question=1)
    c = fn(probs.isel(cell).isel(draw=[0, 1, 3, 4, 6]), target.isel(question=1))
    for v in ("bias", "variance", "error"):
        expect = b[v].copy()
        expect[cell] = c[v]
        xr.testing.assert_allclose(a[v], expect)
    assert int(a.n_draws[cell]) == 5 and int(a.n_draws.isel(model=1, size=0, budget=0, question=0)) == 6


def test_question_with_no_valid_draw_is_nan_not_zero():
    rng = np.random.default_rng(4)
    probs, target = random_cube(rng)
    probs[dict(model=1, question=2)] = np.nan
    for fn in (M.kl_decomposition, M.brier_decomposition, M.zero_one_decomposition):
        ds = fn(probs, target)
        assert bool(ds.bias.isel(model=1, question=2).isnull().all())
        assert bool(ds.variance.isel(model=1, question=2).isnull().all())
        assert bool(ds.error.notnull().isel(model=0).all())
        assert int(ds.n_draws.isel(model=1, question=2).max()) == 0
    assert bool(M.accuracy(probs, target).isel(model=1, question=2).isnull().all())


def test_padded_options_equal_unpadded():
    # a 2-option question stored in a 4-option cube (options 2, 3 NaN in every draw)
    draws = [[0.3, 0.7], [0.6, 0.4], [1.0, 0.0]]
    p2, t = mc(draws, 1)
    p4 = p2.pad(option=(0, 2), constant_values=np.nan)
    assert p4.shape == (3, 4)
    for fn in (M.kl_decomposition, M.brier_decomposition, M.zero_one_decomposition):
        a, b = fn(p2, t), fn(p4, t)
        for v in ("bias", "variance", "error"):
            assert float(a[v]) == pytest.approx(float(b[v]), rel=1e-12, abs=1e-15)
    with pytest.raises(ValueError, match="padding"):
        M.kl_decomposition(p4, t * 3)


def test_bad_inputs_raise_clear_errors():
    p, t = mc([[0.5, 0.6]], 0)
    with pytest.raises(ValueError, match="question='q0'"):
        M.kl_decomposition(p, t)
    p, _ = mc([[0.5, 0.5]], 0)
    with pytest.raises(ValueError, match="integer option index"):
        M.kl_decomposition(p, 2)
    with pytest.raises(ValueError, match="integer option index"):
        M.kl_decomposition(p, 0.5)
    pq = p.expand_dims("question").assign_coords(question=["q0"])
    with pytest.raises(ValueError, match="no value for question='q0'"):
        M.kl_decomposition(pq, xr.DataArray([0], dims="question", coords={"question": ["other"]}))
    with pytest.raises(ValueError, match="lacks"):
        M.kl_decomposition(p.rename(option="choice"), 0)
    with pytest.raises(ValueError, match="inf"):
        M.brier_decomposition(p.copy(data=[[np.inf, 0.0]]), 0)


# ---------------------------------------------------------------- vectorisation


@pytest.mark.parametrize(
    "fn", [M.kl_decomposition, M.brier_decomposition, M.zero_one_decomposition]
)
def test_vectorised_equals_loop(fn):
    rng = np.random.default_rng(11)
    probs, target = random_cube(rng)
    full = fn(probs, target)
    for mi in range(2):
        for si in range(3):
            for bi in range(2):
                one = fn(probs.isel(model=mi, size=si, budget=bi), target)
                got = full.isel(model=mi, size=si, budget=bi)
                for v in ("bias", "variance", "error"):
                    np.testing.assert_allclose(got[v].values, one[v].values, rtol=1e-12)
    # dimension order does not matter
    shuffled = fn(probs.transpose("option", "draw", "question", "budget", "size", "model"), target)
    xr.testing.assert_allclose(shuffled.variance.transpose(*full.variance.dims), full.variance)


def test_target_varying_per_model_broadcasts():
    rng = np.random.default_rng(12)
    probs, target = random_cube(rng)
    tm = xr.concat([target, (target + 1) % 4], dim="model").assign_coords(model=probs.model.values)
    ds = M.kl_decomposition(probs, tm)
    one = M.kl_decomposition(probs.isel(model=1), (target + 1) % 4)
    np.testing.assert_allclose(ds.bias.isel(model=1).values, one.bias.values)


# ---------------------------------------------------------------- incoherence


def test_incoherence_ratio_of_sums_not_mean_of_ratios():
    # q0: variance 1, error 2 ; q1: variance 1, error 8
    # ratio of sums = 2/10 = 0.2 ; mean of ratios = (0.5 + 0.125)/2 = 0.3125
    v = xr.DataArray([1.0, 1.0], dims="question")
    e = xr.DataArray([2.0, 8.0], dims="question")
    assert float(M.incoherence(v, e)) == pytest.approx(0.2)
    assert float((v / e).mean()) == pytest.approx(0.3125)


def test_incoherence_nan_skipping_is_consistent():
    # q2 has a variance but no error: it must leave BOTH sums -> 1/2, not (1+5)/2
    v = xr.DataArray([[1.0, 0.0, 5.0], [np.nan, np.nan, np.nan]], dims=("model", "question"))
    e = xr.DataArray([[1.0, 1.0, np.nan], [1.0, 1.0, 1.0]], dims=("model", "question"))
    out = M.incoherence(v, e)
    assert float(out[0]) == pytest.approx(0.5)
    assert bool(out[1].isnull())
    # zero total error -> NaN
    assert bool(M.incoherence(xr.DataArray([0.0], dims="question"), xr.DataArray([0.0], dims="question")).isnull())


# ---------------------------------------------------------------- coverage error


def test_coverage_error_hand_and_identity():
    # runs y = [[1,0,1],[1,1,0]]: ȳ = [1, .5, .5]
    # bias = (0 + .25 + .25)/3 = 1/6 ; variance = (0+.25+.25+0+.25+.25)/6 = 1/6
    # error = mean (1-y)² = 2/6 = 1/3 ; resolved = 0 (no run passes all)
    y = xr.DataArray([[1, 0, 1], [1, 1, 0]], dims=("draw", "test"))
    ds = M.coverage_error(y.astype(float))
    assert (float(ds.bias), float(ds.variance), float(ds.error)) == pytest.approx((1 / 6, 1 / 6, 1 / 3))
    assert float(ds.resolved) == 0.0 and int(ds.n_tests) == 3 and int(ds.n_draws) == 2
    # padded 4th test (NaN in every run) and a third run not run: unchanged
    y2 = xr.DataArray(
        [[1, 0, 1, np.nan], [1, 1, 0, np.nan], [np.nan, np.nan, np.nan, np.nan]],
        dims=("draw", "test"),
    )
    ds2 = M.coverage_error(y2)
    for v in ("bias", "variance", "error", "n_tests", "n_draws"):
        assert float(ds2[v]) == pytest.approx(float(ds[v]))
    # identity on random ragged data
    rng = np.random.default_rng(5)
    arr = (rng.random((3, 6, 10, 8)) < rng.random((3, 6, 1, 8))).astype(float)
    arr[:, 0, :, 5:] = np.nan  # task 0 has 5 tests
    arr[1, 2, 3, :] = np.nan  # a run not run
    r = xr.DataArray(arr, dims=("model", "question", "draw", "test"))
    ds = M.coverage_error(r)
    np.testing.assert_allclose(ds.error, ds.bias + ds.variance, atol=1e-12)
    assert (ds.n_tests.isel(question=0) == 5).all() and int(ds.n_draws[1, 2]) == 9
    # an all-passing task: zero error, resolved 1
    ok = M.coverage_error(xr.DataArray(np.ones((4, 2)), dims=("draw", "test")))
    assert float(ok.error) == 0.0 and float(ok.resolved) == 1.0
    with pytest.raises(ValueError, match="0 or 1"):
        M.coverage_error(y.astype(float) * 0.5)


# ---------------------------------------------------------------- embeddings, points


def test_embedding_variance_hand():
    # draws [0,0],[2,0],[1,3]: mean [1,1]; squared distances 2, 2, 4 -> 8/3
    e = xr.DataArray([[[0, 0], [2, 0], [1, 3], [np.nan, 1.0]]], dims=("question", "draw", "embedding"))
    assert M.embedding_variance(e).values[0] == pytest.approx(8 / 3)
    single = xr.DataArray([[5.0, 1.0]], dims=("draw", "embedding"))
    assert float(M.embedding_variance(single)) == 0.0
    none = xr.DataArray([[np.nan, 1.0]], dims=("draw", "embedding"))
    assert bool(M.embedding_variance(none).isnull())


def test_point_decomposition_hand_and_identity():
    # A = diag(2, 1), b = 0, x = [1,0],[3,2]: E x = [2,1]; bias = 2*4 + 1 = 9
    # deviations ±[1,1]: 2 + 1 = 3 each -> variance 3 ; error = mean(2, 18 + 4) = 12
    x = xr.DataArray([[1.0, 0.0], [3.0, 2.0]], dims=("draw", "coordinate"))
    b = xr.DataArray([0.0, 0.0], dims="coordinate")
    ds = M.point_decomposition(x, b, np.diag([2.0, 1.0]))
    assert (float(ds.bias), float(ds.variance), float(ds.error)) == pytest.approx((9.0, 3.0, 12.0))
    # non-diagonal A = [[2,1],[1,3]]: vᵀAv = 2v1² + 2v1v2 + 3v2²; E x - b = [2,1] -> 8+4+3 = 15
    ds = M.point_decomposition(x, b, np.array([[2.0, 1.0], [1.0, 3.0]]))
    assert float(ds.bias) == pytest.approx(15.0)
    assert float(ds.variance) == pytest.approx(2 + 2 + 3)
    # per-problem A with (question, coordinate, coordinate2) and a step dim
    rng = np.random.default_rng(6)
    Q, R, S, d = 3, 8, 4, 4
    mats = []
    for _ in range(Q):
        G = rng.normal(size=(d, d))
        mats.append(G @ G.T + d * np.eye(d))
    A = xr.DataArray(np.array(mats), dims=("question", "coordinate", "coordinate2"))
    bq = xr.DataArray(rng.normal(size=(Q, d)), dims=("question", "coordinate"))
    xs = xr.DataArray(rng.normal(size=(Q, R, S, d)), dims=("question", "draw", "step", "coordinate"))
    xs[dict(question=1, draw=3, step=2, coordinate=0)] = np.nan
    ds = M.point_decomposition(xs, bq, A)
    assert set(ds.bias.dims) == {"question", "step"}
    np.testing.assert_allclose(ds.error, ds.bias + ds.variance, rtol=1e-10)
    # loop reference for one (question, step), skipping the NaN draw
    q, s = 1, 2
    pts = [xs.values[q, r, s] for r in range(R) if r != 3]
    Am, bv = mats[q], bq.values[q]
    mean = np.mean(pts, axis=0)
    assert float(ds.bias[q, s]) == pytest.approx((mean - bv) @ Am @ (mean - bv))
    assert float(ds.variance[q, s]) == pytest.approx(np.mean([(p - mean) @ Am @ (p - mean) for p in pts]))
    with pytest.raises(ValueError, match="shape"):
        M.point_decomposition(x, b, np.eye(3))


# ---------------------------------------------------------------- buckets and groups


def test_length_buckets_sizes_and_order():
    # 10 questions, 3 buckets -> sizes 4, 3, 3 (array_split); shortest in bucket 0
    lengths = np.array([50, 10, 90, 20, 80, 30, 70, 40, 60, 100], float)
    ids = M.length_buckets(xr.DataArray(lengths, dims="question"), 3)
    assert ids.dtype.kind == "i"
    np.testing.assert_array_equal(np.bincount(ids.values), [4, 3, 3])
    # bucket 0 = the four shortest: 10, 20, 30, 40
    assert sorted(lengths[ids.values == 0]) == [10, 20, 30, 40]
    assert sorted(lengths[ids.values == 2]) == [80, 90, 100]
    # per-draw input is averaged; NaN questions get -1; lines are bucketed separately
    per_draw = xr.DataArray(
        [[[1, 3], [10, 10], [np.nan, np.nan], [5, 7]], [[9, 9], [1, 1], [5, 5], [2, 2]]],
        dims=("model", "question", "draw"),
    )
    ids = M.length_buckets(per_draw, 2)
    # model 0: means [2, 10, NaN, 6] -> 3 questions, sizes 2, 1: {2, 6} | {10}
    # model 1: means [9, 1, 5, 2] -> {1, 2} | {5, 9}
    np.testing.assert_array_equal(ids.values, [[0, 1, -1, 0], [1, 0, 1, 0]])
    with pytest.raises(ValueError):
        M.length_buckets(per_draw, 0)


def test_incoherence_by_bucket():
    # 6 questions; lengths 1..6 -> buckets {1,2,3}, {4,5,6}
    var = xr.DataArray([1.0, 1.0, 1.0, 3.0, 3.0, 0.0], dims="question")
    err = xr.DataArray([2.0, 2.0, 4.0, 4.0, 4.0, 4.0], dims="question")
    length = xr.DataArray([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], dims="question")
    out = M.incoherence_by_bucket(var, err, length, 2)
    np.testing.assert_allclose(out.incoherence, [3 / 8, 6 / 12])
    np.testing.assert_allclose(out.length, [2.0, 5.0])
    np.testing.assert_array_equal(out.n_questions, [3, 3])
    # a 7th question without a variance (not run) takes no part in forming the buckets
    out7 = M.incoherence_by_bucket(
        xr.concat([var, xr.DataArray([np.nan], dims="question")], "question"),
        xr.concat([err, xr.DataArray([1.0], dims="question")], "question"),
        xr.concat([length, xr.DataArray([0.5], dims="question")], "question"),
        2,
    )
    xr.testing.assert_allclose(out7, out)
    # vectorised over a model dim: each line bucketed on its own lengths
    var2 = xr.concat([var, var], "model")
    len2 = xr.concat([length, length[::-1].assign_coords()], "model")
    len2 = len2.copy(data=np.stack([length.values, length.values[::-1]]))
    out2 = M.incoherence_by_bucket(var2, xr.concat([err, err], "model"), len2, 2)
    np.testing.assert_allclose(out2.incoherence.isel(model=0), [3 / 8, 6 / 12])
    # reversed lengths: short bucket = questions 3,4,5 -> (3+3+0)/12; long = 0,1,2 -> 3/8
    np.testing.assert_allclose(out2.incoherence.isel(model=1), [6 / 12, 3 / 8])


def test_difficulty_groups_shared_across_sizes():
    ref = xr.DataArray(np.arange(10, 0, -1, dtype=float), dims="question",
                       coords={"question": [f"q{i}" for i in range(10)]})
    g = M.difficulty_groups(ref)
    np.testing.assert_array_equal(g.values, [4, 4, 3, 3, 2, 2, 1, 1, 0, 0])
    assert g.attrs["labels"][0] == "Easy" and g.attrs["labels"][4] == "Hard"
    var = xr.DataArray(np.ones((2, 10)), dims=("size", "question"), coords={"question": ref.question})
    err = xr.DataArray(np.tile(np.arange(1.0, 11.0), (2, 1)) * [[1], [2]], dims=("size", "question"),
                       coords={"question": ref.question})
    out = M.incoherence_by_group(var, err, g, labels=g.attrs["labels"], group_dim="difficulty")
    # Easy = questions q8, q9 (errors 9, 10 for size 0) -> 2/19 ; size 1 -> 2/38
    assert float(out.incoherence.sel(difficulty="Easy").isel(size=0)) == pytest.approx(2 / 19)
    assert float(out.incoherence.sel(difficulty="Easy").isel(size=1)) == pytest.approx(2 / 38)
    assert list(out.difficulty.values) == list(M.DIFFICULTY_LABELS)
    with pytest.raises(ValueError):
        M.difficulty_groups(ref, n_groups=4)


# ---------------------------------------------------------------- median split


def test_median_split_rules():
    # Changed (issue 15): the default is the paper's rule (short < median <= long), and under
    # every rule a question with an empty half leaves both halves (counted in n_dropped).
    L = xr.DataArray(
        [[10, 20, 30, 40, 50, np.nan], [1, 2, 3, 4, np.nan, np.nan], [5, 5, 5, 9, np.nan, np.nan],
         [7, 7, 7, 7, np.nan, np.nan]],
        dims=("question", "draw"),
    )
    split = M.median_split(L)
    short, long_ = split
    np.testing.assert_array_equal(short.values[0], [1, 1, 0, 0, 0, 0])  # median 30 is long
    np.testing.assert_array_equal(long_.values[0], [0, 0, 1, 1, 1, 0])
    np.testing.assert_array_equal(short.values[1], [1, 1, 0, 0, 0, 0])  # median 2.5
    np.testing.assert_array_equal(long_.values[1], [0, 0, 1, 1, 0, 0])
    # median 5: nothing below it -> empty short half -> dropped from both; same for 7,7,7,7
    for q in (2, 3):
        assert not short.values[q].any() and not long_.values[q].any()
    np.testing.assert_array_equal(split.kept.values, [True, True, False, False])
    assert int(split.n_dropped) == 2
    short, long_ = M.median_split(L, ties="exclude")
    np.testing.assert_array_equal(short.values[0], [1, 1, 0, 0, 0, 0])  # median 30 excluded
    np.testing.assert_array_equal(long_.values[0], [0, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(long_.values[2], [0, 0, 0, 0, 0, 0])  # was [0,0,0,1]: the defect
    short, long_ = M.median_split(L, ties="rank")
    np.testing.assert_array_equal(short.values[0], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(long_.values[0], [0, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(short.values[2], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(long_.values[2], [0, 0, 1, 1, 0, 0])
    with pytest.raises(ValueError, match="ties"):
        M.median_split(L, ties="lowest")


def test_overthinking_halves():
    # one question, 4 draws, lengths 1..4: short = draws 0,1 ; long = draws 2,3
    draws = [[0.9, 0.1], [0.7, 0.3], [0.6, 0.4], [0.2, 0.8]]
    p, t = mc(draws, 0)
    L = xr.DataArray([[1.0, 2.0, 3.0, 4.0]], dims=("question", "draw"), coords={"question": ["q0"]})
    out = M.overthinking(p, t, L)
    y = [1.0, 0.0]
    bs, vs, _ = ref_kl(draws[:2], y)
    bl, vl, _ = ref_kl(draws[2:], y)
    np.testing.assert_allclose(out.accuracy, [1.0, 0.5])
    np.testing.assert_allclose(out.incoherence, [vs / (bs + vs), vl / (bl + vl)], rtol=1e-9)
    np.testing.assert_allclose(out.length, [1.5, 3.5])
    assert list(out.half.values) == ["short", "long"]


# ---------------------------------------------------------------- fits


def test_power_law_fit_exact():
    x = np.array([1.7e9, 4e9, 8e9, 14e9, 32e9])
    y = 3.0 * x ** (-0.7)
    fit = M.power_law_fit(x, y)
    assert fit.alpha == pytest.approx(0.7, rel=1e-10)
    assert fit.prefactor == pytest.approx(3.0, rel=1e-8)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    alpha, pref, r2 = fit  # unpacks as a tuple
    # noisy data: R² < 1
    y2 = y * np.array([1.1, 0.9, 1.05, 0.97, 1.0])
    assert M.power_law_fit(x, y2).r2 < 1.0
    # NaN pairs skipped; non-positive raises
    assert M.power_law_fit(np.append(x, np.nan), np.append(y, 1.0)).alpha == pytest.approx(0.7)
    with pytest.raises(ValueError, match="> 0"):
        M.power_law_fit(x, y * 0)
    with pytest.raises(ValueError, match="2 distinct"):
        M.power_law_fit([1.0], [1.0])
    # vectorised along a dim: one fit per group
    X = xr.DataArray(x, dims="size")
    Y = xr.DataArray(np.stack([2 * x**-0.5, 5 * x**-1.5]), dims=("group", "size"))
    f = M.power_law_fit(X, Y, dim="size")
    np.testing.assert_allclose(f.alpha, [0.5, 1.5], rtol=1e-9)
    np.testing.assert_allclose(f.prefactor, [2, 5], rtol=1e-7)
    np.testing.assert_allclose(f.r2, [1, 1], atol=1e-12)


def test_joint_fit_exact():
    L = xr.DataArray([100.0, 300.0, 1000.0, 3000.0], dims="bucket")
    N = xr.DataArray([1.7e9, 8e9, 32e9], dims="size")
    inc = 0.1 + 0.05 * np.log(L) - 0.02 * np.log(N)
    fit = M.joint_fit_incoherence(L, N, inc)
    assert (fit.intercept, fit.length_coef, fit.size_coef) == pytest.approx((0.1, 0.05, -0.02), rel=1e-8)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.predict(500.0, 2e9) == pytest.approx(0.1 + 0.05 * np.log(500) - 0.02 * np.log(2e9))
    fit2 = M.joint_fit_incoherence(L, N, np.exp(inc), log_incoherence=True)
    assert fit2.size_coef == pytest.approx(-0.02, rel=1e-8)
    with pytest.raises(ValueError):
        M.joint_fit_incoherence([1.0, 2.0], [1.0, 2.0], [0.1, 0.2])


# ---------------------------------------------------------------- ensembling


def test_ensemble_hand_and_errors():
    p = xr.DataArray(np.arange(12, dtype=float).reshape(1, 6, 2), dims=("question", "draw", "option"),
                     coords={"seed": ("draw", np.arange(6))})
    e = M.ensemble(p, 2, n_ensembles=3)
    # members average draws (0,1), (2,3), (4,5): [1, 2], [5, 6], [9, 10]
    np.testing.assert_allclose(e.values[0], [[1, 2], [5, 6], [9, 10]])
    assert e.sizes["draw"] == 3 and e.attrs["ensemble_size"] == 2 and "seed" not in e.coords
    with pytest.raises(ValueError, match=r"E=4.*needs 12 draws.*has 6"):
        M.ensemble(p, 4, n_ensembles=3)
    q = p.copy()
    q[0, 1, :] = np.nan
    assert bool(M.ensemble(q, 2, n_ensembles=3)[0, 0].isnull().all())


def test_ensemble_variance_falls_as_one_over_E():
    # iid draws: the Brier variance of the mean of E draws is (variance of one draw) / E;
    # the plug-in estimate over 10 members has the same (n-1)/n factor for every E.
    rng = np.random.default_rng(2024)
    Q, R, C = 400, 320, 4
    alpha = rng.uniform(0.5, 3.0, size=(Q, 1, C))
    p = rng.gamma(np.broadcast_to(alpha, (Q, R, C)))
    p /= p.sum(-1, keepdims=True)
    probs = xr.DataArray(p, dims=("question", "draw", "option"))
    target = xr.DataArray(rng.integers(0, C, Q), dims="question")
    v1 = float(M.brier_decomposition(M.ensemble(probs, 1), target).variance.mean())
    b1 = float(M.brier_decomposition(M.ensemble(probs, 1), target).bias.mean())
    for E in (2, 4, 8, 16, 32):
        ds = M.brier_decomposition(M.ensemble(probs, E), target)
        assert float(ds.variance.mean()) * E / v1 == pytest.approx(1.0, rel=0.1), E
        # bias ≈ flat (it only loses the variance/10 noise of the 10-member mean)
        assert float(ds.bias.mean()) == pytest.approx(b1, rel=0.1)


# ---------------------------------------------------------------- bootstrap


def test_bootstrap_draws_brier_expectation():
    # resampling n draws with replacement from R draws: E[plug-in Brier variance] =
    # (n-1)/n * (full plug-in variance); E[error] = full error.
    rng = np.random.default_rng(9)
    Q, R, C = 60, 40, 4
    probs = xr.DataArray(rng.dirichlet(np.ones(C), size=(Q, R)), dims=("question", "draw", "option"))
    probs[dict(question=0, draw=slice(30, None))] = np.nan  # question 0 has 30 draws only
    target = xr.DataArray(rng.integers(0, C, Q), dims="question")
    out = M.bootstrap_draws(M.brier_decomposition, probs, target, [2, 5, 30], n_boot=200, rng=1)
    full_v = float(out.variance_full)
    for n in (2, 5, 30):
        got = float(out.variance.sel(n_draws=n))
        assert got == pytest.approx((n - 1) / n * full_v, rel=0.03), n
        assert float(out.error.sel(n_draws=n)) == pytest.approx(float(out.error_full), rel=0.03)
        assert float(out.variance_lower.sel(n_draws=n)) < got < float(out.variance_upper.sel(n_draws=n))
    # the band narrows with more draws
    width = out.variance_upper - out.variance_lower
    assert float(width.sel(n_draws=30)) < float(width.sel(n_draws=2))
    assert "incoherence" in out and "incoherence_full" in out
    # reproducible with the same seed
    again = M.bootstrap_draws(M.brier_decomposition, probs, target, [2], n_boot=20, rng=5)
    again2 = M.bootstrap_draws(M.brier_decomposition, probs, target, [2], n_boot=20, rng=5)
    xr.testing.assert_identical(again, again2)


def test_bootstrap_draws_constant_draws_collapse():
    # identical draws per question: every resample equals the full data
    p = np.broadcast_to(np.array([[0.1, 0.9], [0.6, 0.4]])[:, None, :], (2, 5, 2))
    probs = xr.DataArray(p.copy(), dims=("question", "draw", "option"))
    t = xr.DataArray([0, 0], dims="question")
    kl = functools.partial(M.kl_decomposition, delta=0.0)
    out = M.bootstrap_draws(kl, probs, t, [3], n_boot=10, rng=0)
    # bias = mean(-log .1, -log .6), variance 0
    assert float(out.bias.sel(n_draws=3)) == pytest.approx((-math.log(0.1) - math.log(0.6)) / 2)
    assert float(out.bias_lower.sel(n_draws=3)) == pytest.approx(float(out.bias_upper.sel(n_draws=3)))
    assert float(out.variance.sel(n_draws=3)) == pytest.approx(0.0, abs=1e-12)


def test_bootstrap_questions_mean_ci():
    rng = np.random.default_rng(10)
    Q = 400
    x = xr.DataArray(rng.exponential(size=(2, Q)), dims=("model", "question"))
    out = M.bootstrap_questions(x.rename("v"), lambda d: d.mean("question"), n_boot=2000, rng=3)
    se = x.std("question") / np.sqrt(Q)
    np.testing.assert_allclose(out.v, x.mean("question"))
    np.testing.assert_allclose(out.v_std, se, rtol=0.1)
    np.testing.assert_allclose(out.v_upper - out.v_lower, 2 * 1.96 * se, rtol=0.12)
    # incoherence CI from a decomposition dataset
    var = xr.DataArray(rng.uniform(0, 1, Q), dims="question")
    ds = xr.Dataset({"variance": var, "error": var + rng.uniform(0, 1, Q)})
    ci = M.bootstrap_questions(ds, lambda d: M.incoherence(d.variance, d.error), n_boot=300, rng=0)
    assert float(ci.incoherence_lower) < float(ci.incoherence) < float(ci.incoherence_upper)


# ---------------------------------------------------------------- format errors


def test_format_error_counts():
    flag = xr.DataArray([[[1, 0, np.nan], [0, 0, 1]], [[0, 0, 0], [np.nan, np.nan, np.nan]]],
                        dims=("budget", "question", "draw"))
    c = M.format_error_counts(flag)
    np.testing.assert_array_equal(c["count"], [2, 0])
    np.testing.assert_array_equal(c["total"], [5, 3])
    np.testing.assert_allclose(M.format_error_rate(flag), [0.4, 0.0])
    b = xr.DataArray([[True, False], [False, False]], dims=("question", "draw"))
    assert float(M.format_error_rate(b)) == 0.25


def test_bootstrap_draws_chunking_does_not_change_result():
    rng = np.random.default_rng(21)
    probs, target = random_cube(rng, shape=(2, 1, 1, 5, 6, 3))
    a = M.bootstrap_draws(M.kl_decomposition, probs, target, [1, 4], n_boot=7, rng=2)
    b = M.bootstrap_draws(M.kl_decomposition, probs, target, [1, 4], n_boot=7, rng=2, max_elements=1)
    xr.testing.assert_allclose(a, b)
    assert set(a.bias.dims) == {"n_draws", "model", "size", "budget"}
