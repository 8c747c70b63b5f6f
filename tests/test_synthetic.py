"""Tests of the synthetic optimizer (the paper's section 3, docs/science.md): encoding, teacher, A-norm
decomposition, model, training and rollouts. Expected values are worked out by hand or
from identities, independently of the code under test."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from hotmess.core import metrics
from hotmess.plugins.synthetic.encoding import (
    MINUS,
    PLUS,
    EncodingRangeError,
    allowed_mask,
    decode,
    encode,
    from_text,
    to_text,
    tokens_per_float,
)
from hotmess.plugins.synthetic.experiment import SynthConfig, SyntheticConfigError, decomposition_np
from hotmess.plugins.synthetic.model import KVCache, SizeSpec, build_model, count_params
from hotmess.plugins.synthetic.problem import (
    Quadratic,
    make_problem,
    teacher_step,
    teacher_trajectories,
)

torch.set_num_threads(1)


# ----------------------------------------------------------------------------- encoding
@pytest.mark.parametrize(
    "value, text",
    [
        (0.0, "+900000"),          # zero: sign +, exponent capped at 9, mantissa 0
        (-0.0, "+900000"),
        (1.0, "+010000"),
        (-1.0, "-010000"),
        (0.0123456, "+212346"),    # 1.23456e-2 rounds at the last digit to 1.2346
        (0.0123454, "+212345"),
        (-0.005, "-350000"),
        (9.9999, "+099999"),
        (0.09999951, "+110000"),   # rounds up to 1.0000e-1: carries into the exponent
        (1e-9, "+910000"),
        (3e-12, "+900030"),        # below 1e-9 the exponent stays capped at 9: 0.0003e-9
        (1e-15, "+900000"),        # underflows to zero
        (-1e-15, "+900000"),       # ... with sign +
    ],
)
def test_encode_hand_cases(value, text):
    tokens, clamped = encode(value, 4)
    assert to_text(tokens) == text
    assert not clamped
    assert tokens.shape == (7,)


def test_tokens_per_pair_is_56_for_paper_precision():
    assert tokens_per_float(4) == 7
    assert 2 * 4 * tokens_per_float(4) == 56


def test_decode_hand_cases():
    assert decode(from_text("+212346")) == 0.012346
    assert decode(from_text("-350000")) == -0.005
    assert decode(from_text("+099999")) == 9.9999
    assert decode(from_text("+900030")) == 3e-12


def test_round_trip_matches_correctly_rounded_decimal():
    rng = np.random.default_rng(0)
    # magnitudes in [1e-9, 9.99], where every value has all 5 significant digits
    v = rng.choice([-1.0, 1.0], 20000) * 10.0 ** rng.uniform(-9, np.log10(9.99), 20000)
    got = decode(encode(v, 4)[0], 4)
    want = np.array([float(f"{x:.4e}") for x in v])  # Python's correctly rounded 5 significant digits
    assert np.array_equal(got, want)
    # below 1e-9 the exponent is capped: fixed point with 13 decimals
    tiny = rng.uniform(-1e-9, 1e-9, 2000)
    assert np.array_equal(decode(encode(tiny, 4)[0], 4), np.array([float(f"{x:.13f}") for x in tiny]))


def test_tokens_round_trip_exactly():
    rng = np.random.default_rng(1)
    n = 5000
    tok = np.empty((n, 7), dtype=np.uint8)
    tok[:, 0] = rng.choice([MINUS, PLUS], n)
    tok[:, 1] = rng.integers(0, 10, n)
    tok[:, 2] = rng.integers(1, 10, n)  # canonical form: leading mantissa digit non-zero
    tok[:, 3:] = rng.integers(0, 10, (n, 4))
    assert np.array_equal(encode(decode(tok, 4), 4)[0], tok)


def test_out_of_range_raises_or_clamps():
    with pytest.raises(EncodingRangeError, match="outside the encoding's range"):
        encode([0.5, 10.0], 4)
    with pytest.raises(EncodingRangeError):
        encode(9.99995, 4)  # rounds to 10.0000
    with pytest.raises(EncodingRangeError, match="NaN"):
        encode(np.nan, 4, clamp=True)
    tok, clamped = encode([-12.5, 0.5, np.inf], 4, clamp=True)
    assert [to_text(t) for t in tok] == ["-099999", "+150000", "+099999"]
    assert clamped.tolist() == [True, False, True]


def test_decode_rejects_tokens_out_of_place():
    with pytest.raises(ValueError, match="sign position"):
        decode(from_text("5123456"))
    with pytest.raises(ValueError, match="digit position"):
        decode(from_text("+1-3456"))
    with pytest.raises(ValueError, match="7 tokens"):
        decode(from_text("+12345"))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        from_text("+1.2345")


def test_allowed_mask_positions():
    m = allowed_mask(2, 4)
    assert m.shape == (14, 12)
    for pos in (0, 7):
        assert m[pos].tolist() == [False] * 10 + [True, True]
    for pos in (1, 6, 8, 13):
        assert m[pos].tolist() == [True] * 10 + [False, False]


# ----------------------------------------------------------------------------- problem
def test_problem_condition_number_and_symmetry():
    p = make_problem(np.random.default_rng(3), dim=4, condition_number=50)
    w = np.linalg.eigvalsh(p.A)
    assert np.allclose(p.A, p.A.T)
    assert w.min() == pytest.approx(1.0) and w.max() == pytest.approx(50.0)
    assert np.linalg.norm(p.start_center - p.b) == pytest.approx(0.5)


def test_teacher_hand_case_and_step_norm():
    p = Quadratic(A=np.diag([1.0, 4.0]), b=np.array([1.0, -1.0]), start_center=np.zeros(2), start_spread=0.0)
    # at x = (2, 0): gradient A(x-b) = (1, 4); u = -0.005 (1, 4)/sqrt(17)
    u = teacher_step(p, np.array([[2.0, 0.0]]), 0.005)
    assert np.allclose(u, -0.005 * np.array([1.0, 4.0]) / np.sqrt(17.0))
    assert np.array_equal(teacher_step(p, p.b[None], 0.005), np.zeros((1, 2)))  # zero gradient


def test_teacher_step_norm_and_convergence():
    p = make_problem(np.random.default_rng(4), start_distance=0.5, start_spread=0.05)
    x0 = p.starts(64, np.random.default_rng(5))
    xs, us = teacher_trajectories(p, x0, 600, 0.005)
    assert np.allclose(np.linalg.norm(us, axis=-1), 0.005, rtol=1e-12)
    assert np.allclose(xs[1:], xs[:-1] + us)
    # distance travelled 3.0 >> start distance ~0.5: every trajectory ends within a few steps of b
    assert np.linalg.norm(xs[-1] - p.b, axis=-1).max() < 0.02
    f = p.value(xs)
    assert (f[-1] < 1e-3 * f[0]).all()


# ----------------------------------------------------------------------------- decomposition
def test_a_norm_decomposition_hand_case():
    # A = diag(1, 4), b = 0, points (1, 0) and (3, 1):
    # mean (2, .5): bias = 4 + 4*.25 = 5; deviations (-1,-.5), (1,.5): variance = 1 + 1 = 2;
    # error = mean(1, 9 + 4) = 7 = bias + variance.
    xs = np.array([[1.0, 0.0], [3.0, 1.0]])
    got = decomposition_np(xs, np.zeros(2), np.diag([1.0, 4.0]))
    assert (got["bias"], got["variance"], got["error"]) == pytest.approx((5.0, 2.0, 7.0))
    x = xr.DataArray(xs, dims=("draw", "coordinate"))
    dec = metrics.point_decomposition(x, xr.DataArray(np.zeros(2), dims="coordinate"), np.diag([1.0, 4.0]))
    assert (float(dec.bias), float(dec.variance), float(dec.error)) == pytest.approx((5.0, 2.0, 7.0))


def test_a_norm_identity_error_is_bias_plus_variance():
    rng = np.random.default_rng(6)
    p = make_problem(rng)
    xs = rng.normal(size=(5, 300, 4))  # (step, draw, coordinate)
    got = decomposition_np(xs, p.b, p.A)
    direct = np.mean([[p.sq_a_norm(x - p.b) for x in step] for step in xs], axis=1)
    assert np.allclose(got["error"], direct)
    assert np.allclose(got["bias"] + got["variance"], got["error"])


# ----------------------------------------------------------------------------- model
def test_param_count_by_formula():
    # tok 12w + pos 56w + per layer: 2 LayerNorms 4w, qkv 3w^2+3w, proj w^2+w,
    # fc1 4w^2+4w, fc2 4w^2+w; final LayerNorm 2w; head 12w+12.
    for layers, width in [(1, 16), (3, 48)]:
        w = width
        want = 12 * w + 56 * w + layers * (4 * w + 3 * w * w + 3 * w + w * w + w + 4 * w * w + 4 * w + 4 * w * w + w) + 2 * w + 12 * w + 12
        m = build_model(SizeSpec("s", layers, width, 4), 12, 56, seed=0)
        assert count_params(m) == want


def test_kv_cache_matches_full_forward():
    m = build_model(SizeSpec("s", 2, 32, 4), 12, 56, seed=1).eval()
    tokens = torch.randint(0, 12, (3, 20), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = m(tokens)
        cache = KVCache(m, 3, "cpu")
        parts = [m(tokens[:, :12], cache)] + [m(tokens[:, t:t + 1], cache) for t in range(12, 20)]
    assert torch.allclose(torch.cat(parts, 1), full, atol=1e-5)


def test_bad_size_and_config_keys_are_named():
    with pytest.raises(ValueError, match="divisible by heads"):
        SizeSpec("s", 1, 10, 4)
    with pytest.raises(SyntheticConfigError, match="synthetic.bogus"):
        SynthConfig.from_mapping({"bogus": 1, "sizes": [{"name": "a", "layers": 1, "width": 8, "heads": 2}]})
    with pytest.raises(SyntheticConfigError, match="synthetic.problem.dimension"):
        SynthConfig.from_mapping({"problem": {"dimension": 4}, "sizes": [{"name": "a", "layers": 1, "width": 8, "heads": 2}]})
    with pytest.raises(ValueError, match="multiple of eval_every"):
        SynthConfig.from_mapping({"sizes": [{"name": "a", "layers": 1, "width": 8, "heads": 2}],
                                  "train": {"eval_every": 10, "checkpoint_every": 15}})
