"""The numpy core of the multiple-choice decompositions (KL, Brier, 0/1).

Every multiple-choice metric here is a function of *weighted means over draws* of a few
per-draw features (``docs/science.md#implementation``):

* KL: ``m[c] = E_ε log f̂_ε[c]``; then ``log f̄ = m − log Σ exp m``, variance = ``−log Σ exp m``
  (``E_ε KL(f̄ ‖ f̂_ε)`` simplifies to that), bias = ``KL(y ‖ f̄)``, cross-entropy = ``−y·m``.
* Brier: ``E f``, ``E ‖f‖²`` (smoothing is affine, applied to the means).
* 0/1: ``E f`` (the main prediction is its argmax) and ``E v`` with ``v`` the draw's
  tie-split prediction vector (:data:`~hotmess.core.metrics.validation.TIE_RULE`).

So a decomposition is one pass over the cube (features, then a batched matrix product with
the draw weights) and a bootstrap replicate over draws is the same product with resampling
counts as weights: no copy of the cube. Cells are processed in blocks of about
:data:`BLOCK_ELEMENTS` values, which bounds the temporary memory; checks (finite, entries in
[0, 1], sums 1) are fused into the same pass. Any problem raises
:class:`~hotmess.core.metrics.validation.BadInput`; the public functions then re-run the
xarray checks to name the offending cell.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from hotmess.core.metrics.validation import PROB_ATOL, TIE_ATOL, BadInput

#: Values of the cube processed at once (8 bytes each): bounds the temporaries.
BLOCK_ELEMENTS = 1 << 21

OUTPUTS = {
    "kl": ("bias", "variance", "error", "cross_entropy", "noise", "n_draws"),
    "brier": ("bias", "variance", "error", "n_draws"),
    "zero_one": (
        "error", "loss", "bias", "variance", "sign", "net_coefficient", "net_variance",
        "main_prediction", "main_ties", "n_draws",
    ),
    "accuracy": ("accuracy", "n_draws"),
}
#: The family whose features an output set needs.
FAMILY = {"kl": "kl", "brier": "brier", "zero_one": "zero_one", "accuracy": "zero_one"}


class Block:
    """One block of cells: values with NaN zeroed, masks, and the option count per cell.

    ``x`` (nb, D, C) float64 with non-valid entries set to 0; ``valid`` (nb, D) bool;
    ``present`` (nb, C) bool or None (every option present); ``n_opt`` (nb, 1) float.
    """

    __slots__ = ("x", "valid", "present", "n_opt", "sums")

    def __init__(self, raw: np.ndarray, need_min: bool = True, check: bool = True):
        """``need_min=False`` skips the check of the smallest entry: only for KL, whose
        ``log(x + δ)`` turns an entry below ``-δ`` into NaN, which the caller detects in the
        means and then redoes the block with the full checks. ``check=False`` takes the
        values as they are (every draw valid, no padding): the caller must redo the block
        checked if a mean comes out non-finite (a NaN anywhere propagates into the means)."""
        x = np.asarray(raw, dtype=np.float64)
        nb, D, C = x.shape
        if not check:
            self.x, self.sums, self.present = x, None, None
            self.valid = np.ones((nb, D), dtype=bool)
            self.n_opt = np.full((nb, 1), float(C))
            return
        s = osum(x)  # NaN propagates: all finite <=> s finite
        if np.isfinite(s).all():
            self.valid = np.ones((nb, D), dtype=bool)
            self.present = None
            self.n_opt = np.full((nb, 1), float(C))
            counted = s
        else:
            if np.isinf(x).any():
                raise BadInput("inf")
            present, valid = validity(x)
            x = np.where(valid[:, :, None] & present[:, None, :], x, 0.0)
            s = osum(x)
            counted = s[valid]
            self.valid, self.present = valid, present
            self.n_opt = present.sum(-1, keepdims=True).astype(float)
        # entries >= 0 and a sum <= 1 + tol bound every entry by 1 + tol: max only if min < 0
        lo = x.min(initial=np.inf) if need_min else 0.0
        hi = x.max(initial=-np.inf) if lo < 0 else 0.0
        if counted.size and (counted.min() < 1 - PROB_ATOL or counted.max() > 1 + PROB_ATOL):
            raise BadInput("sum")
        if lo < -PROB_ATOL or hi > 1 + PROB_ATOL:
            raise BadInput("not a probability vector")
        self.x = np.clip(x, 0.0, 1.0) if lo < 0 else x
        self.sums = s


def osum(a: np.ndarray) -> np.ndarray:
    """Sum over the last (short, option) axis: several times faster than ``a.sum(-1)`` on a
    short last axis (a stacked matrix product of float data; slice by slice otherwise)."""
    if a.dtype == np.float64 and a.ndim == 3:
        return np.matmul(a, np.ones((a.shape[-1], 1)))[..., 0]
    out = np.array(a[..., 0], dtype=float)
    for c in range(1, a.shape[-1]):
        out += a[..., c]
    return out


def omax(a: np.ndarray) -> np.ndarray:
    """Maximum over the last (short) axis, slice by slice (NaN propagates as in ``max``)."""
    out = a[..., 0].copy()
    for c in range(1, a.shape[-1]):
        np.maximum(out, a[..., c], out=out)
    return out


def validity(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(present (..., C), valid (..., D))`` of values (..., D, C): the padding rule."""
    fin = np.isfinite(x)
    present = fin.any(axis=-2)
    valid = (fin | ~present[..., None, :]).all(-1) & fin.any(-1)
    return present, valid


def tie_split(v: np.ndarray, present: np.ndarray | None) -> np.ndarray:
    """Tie-split argmax along the last axis: 1/k on each of the k entries within TIE_ATOL of
    the maximum (over present entries), 0 elsewhere."""
    if present is not None:
        v = np.where(present, v, -np.inf)
    hit = (v >= (omax(v) - TIE_ATOL)[..., None]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):  # a NaN row: redone checked
        hit /= osum(hit)[..., None]
    return hit


# ---------------------------------------------------------------- per-draw features


def features(family: str, b: Block, delta: float) -> np.ndarray:
    """(nb, D, K) per-draw features whose weighted means determine the metric."""
    x = b.x
    if family == "kl":
        with np.errstate(divide="ignore", invalid="ignore"):  # NaN: see Block(need_min=False)
            logf = np.log((x + delta) / (1.0 + b.n_opt[:, :, None] * delta))
        if b.present is not None or not b.valid.all():
            logf = np.where(b.valid[:, :, None] & _present(b)[:, None, :], logf, 0.0)
        if delta == 0:  # log 0 = -inf: keep 0 * -inf out of the weighted means
            neg = np.isneginf(logf)
            if neg.any():
                return np.concatenate([np.where(neg, 0.0, logf), neg.astype(float)], axis=-1)
            return np.concatenate([logf, np.zeros_like(logf)], axis=-1)
        return logf
    if family == "brier":
        q = osum(x * x)
        sums = osum(x) if b.sums is None else b.sums
        return np.concatenate([x, q[..., None], sums[..., None]], axis=-1)
    if family == "zero_one":
        return np.concatenate([x, tie_split(x, _present_draws(b))], axis=-1)
    raise ValueError(f"unknown family {family!r}")


def _present(b: Block) -> np.ndarray:
    return np.ones((b.x.shape[0], b.x.shape[2]), dtype=bool) if b.present is None else b.present


def _present_draws(b: Block) -> np.ndarray | None:
    return None if b.present is None else b.present[:, None, :]


# ---------------------------------------------------------------- metrics from the means


def finish(
    family: str, F: np.ndarray, y: np.ndarray, present: np.ndarray | None, n_opt: np.ndarray,
    delta: float,
) -> dict[str, np.ndarray]:
    """Metrics from the mean features ``F`` (..., K); ``y`` (..., C) the target vector (0 on
    padding), ``present`` (..., C) or None, ``n_opt`` (..., 1). Leading dims broadcast."""
    C = y.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if family == "kl":
            return _finish_kl(F, y, present, C)
        if family == "brier":
            return _finish_brier(F, y, present, n_opt, delta, C)
        return _finish_zero_one(F, y, present, C)


def _finish_kl(F, y, present, C):
    m = F[..., :C]
    if F.shape[-1] == 2 * C:  # delta == 0: an option with log f = -inf in a counted draw
        m = np.where(F[..., C:] > 0, -np.inf, m)
    mp = m if present is None else np.where(present, m, -np.inf)
    top = omax(mp)
    log_z = top + np.log(osum(np.exp(mp - top[..., None])))
    pos = y > 0
    ylogy = osum(np.where(pos, y * np.log(np.where(pos, y, 1.0)), 0.0))
    noise = 0.0 - ylogy
    y_m = osum(np.where(pos, y * m, 0.0))
    bias = ylogy - y_m + log_z * osum(y)  # KL(y || f̄), log f̄ = m - log Z
    variance = np.maximum(-log_z, 0.0)
    ce = -y_m
    return {"bias": bias, "variance": variance, "error": bias + variance, "cross_entropy": ce,
            "noise": noise}


def _finish_brier(F, y, present, n_opt, delta, C):
    scale = 1.0 + n_opt[..., 0] * delta
    fbar = (F[..., :C] + delta) / scale[..., None]
    if present is not None:
        fbar = np.where(present, fbar, 0.0)
    mean_sq = (F[..., C] + 2 * delta * F[..., C + 1] + n_opt[..., 0] * delta**2) / scale**2
    bias = osum((y - fbar) ** 2)
    variance = np.maximum(mean_sq - osum(fbar * fbar), 0.0)
    error = osum(y * y) - 2 * osum(y * fbar) + mean_sq
    return {"bias": bias, "variance": variance, "error": error}


def _finish_zero_one(F, y, present, C):
    mean_f, mean_v = F[..., :C], F[..., C:]
    u = tie_split(mean_f, present)  # main prediction, split over its ties
    ystar = tie_split(y, present)  # the correct option (a one-hot y: itself)
    acc = osum(mean_v * ystar)
    loss = 1.0 - acc
    p_main = osum(u * ystar)
    bias = 1.0 - p_main
    variance = np.maximum(1.0 - osum(u * mean_v), 0.0)
    sign = 2.0 * p_main - 1.0
    net = loss - bias
    coef = np.where(variance > 0, net / np.where(variance > 0, variance, 1.0), sign)
    ties = osum(u > 0)
    main = np.where(ties == 1, u.argmax(-1), -1).astype(float)
    return {"error": loss, "loss": loss, "bias": bias, "variance": variance, "sign": sign,
            "net_coefficient": coef, "net_variance": net, "main_prediction": main,
            "main_ties": ties.astype(float), "accuracy": acc}


# ---------------------------------------------------------------- drivers


def flat_cells(x: np.ndarray) -> np.ndarray:
    """``x`` (..., D, C) as (N, D, C), without a copy when the layout allows."""
    D, C = x.shape[-2:]
    try:
        return np.reshape(x, (-1, D, C), copy=False)
    except ValueError:
        return np.reshape(x, (-1, D, C))


def blocks(n: int, per_cell: int, limit: int = BLOCK_ELEMENTS) -> Iterator[slice]:
    step = max(1, limit // max(1, per_cell))
    for s in range(0, n, step):
        yield slice(s, min(n, s + step))


def decompose(
    x: np.ndarray, y: np.ndarray, *, outputs: str, delta: float, check: bool = True
) -> tuple[np.ndarray, ...]:
    """The outputs ``OUTPUTS[outputs]`` for probs ``x`` (..., D, C) and target vectors ``y``
    broadcastable to (..., C). Used through ``xarray.apply_ufunc``.

    ``check=False`` skips the probability-vector checks (the caller validated the cube once);
    missing data are still handled: a block whose means are not finite is redone checked."""
    lead, (D, C) = x.shape[:-2], x.shape[-2:]
    xf = flat_cells(x)
    yf = np.broadcast_to(y, lead + (C,)).reshape(-1, C)
    family, names = FAMILY[outputs], OUTPUTS[outputs]
    out = {k: np.empty(xf.shape[0]) for k in names}
    for sl in blocks(xf.shape[0], D * C):
        b, mean = _block_means(xf[sl], family, delta, check)
        n = b.valid.sum(-1).astype(float)
        yb = yf[sl]
        if b.present is not None and ((yb > 0) & ~b.present).any(-1)[n > 0].any():
            raise BadInput("target on padding")
        res = finish(family, mean, yb, b.present, b.n_opt, delta)
        res["n_draws"] = n
        for k in names:
            v = res[k]
            out[k][sl] = v if k == "n_draws" else np.where(n > 0, v, np.nan)
    return tuple(out[k].reshape(lead) for k in names)


def _block_means(xb: np.ndarray, family: str, delta: float, check: bool) -> tuple[Block, np.ndarray]:
    """The block and its valid-draw means of the family's features.

    KL skips the minimum check: ``log(x + δ)`` of an entry below ``-δ`` is NaN and shows in
    the means; an unchecked block with missing data (NaN) shows there too. Either way the
    block is redone with every check (which handles missing data and names bad vectors)."""
    skip_min = family == "kl" and delta > 0
    b = Block(xb, need_min=not skip_min, check=check)
    mean, n = _means(b, family, delta)
    if (skip_min or not check) and not np.isfinite(mean[n > 0]).all():
        b = Block(xb)
        mean, n = _means(b, family, delta)
    return b, mean


def _means(b: Block, family: str, delta: float) -> tuple[np.ndarray, np.ndarray]:
    feats = features(family, b, delta)
    w = b.valid.astype(float)
    n = w.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.matmul(w[:, None, :], feats)[:, 0, :] / n[:, None], n


def weighted_means(feats: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Means of ``feats`` (nb, D, K) under per-replicate draw counts (nb, R, D) -> (nb, R, K)."""
    total = counts.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.matmul(counts, feats) / total


FinishFn = Callable[..., dict[str, np.ndarray]]
