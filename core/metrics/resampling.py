"""Ensembles of draws and bootstrap confidence bands (over draws and over questions).

A bootstrap replicate is a *weighted* reduction, not a copy of the cube
(``docs/science.md#bootstrap``): resampling n draws of a question with replacement gives
each draw a count (multinomial), and every multiple-choice decomposition is a function of
weighted draw means (:mod:`._kernels`), so a replicate is one batched matrix product of the
counts with the per-draw features. Resampling questions likewise gives each question a count,
and a ratio of sums (incoherence) becomes a dot product with those counts. The
straightforward version (copying the resampled draws and calling the metric) is kept as
``method="resample"``: it serves any metric and uses the same random indices, so both give
the same numbers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core.metrics import _kernels as K
from hotmess.core.metrics.decompositions import (
    brier_decomposition,
    kl_decomposition,
    zero_one_decomposition,
)
from hotmess.core.metrics.grouping import incoherence
from hotmess.core.metrics.validation import (
    DEFAULT_DELTA,
    BadInput,
    as_float,
    explain_bad_probs,
    mean_over,
    quiet,
    require,
    target_vector,
)

__all__ = ["ensemble", "bootstrap_draws", "bootstrap_questions"]

_FAMILIES = {kl_decomposition: "kl", brier_decomposition: "brier", zero_one_decomposition: "zero_one"}


def ensemble(
    probs: xr.DataArray,
    E: int,
    n_ensembles: int = 10,
    *,
    draw_dim: str = "draw",
    rng: np.random.Generator | int | None = None,
) -> xr.DataArray:
    """Average E draws into one ensemble member; ``n_ensembles`` non-overlapping members.

    Member k is the arithmetic mean of draws ``k·E … (k+1)·E − 1`` (after an optional random
    permutation of the draw order, the same for every question); draws beyond
    ``n_ensembles · E`` are unused. A member is NaN if any of its E draws is missing (so
    every member averages exactly E draws; the decompositions then skip it).

    Parameters
    ----------
    probs : xarray.DataArray
        Outcome vectors (probabilities in the paper), dims including ``draw_dim``.
    E : int
        Ensemble size (≥ 1).
    n_ensembles : int, default 10
        Number of members (the paper compares 10 per E).
    draw_dim : str
    rng : numpy.random.Generator or int, optional
        If given, permute the draws first (useful when draws are ordered by few-shot
        context).

    Returns
    -------
    xarray.DataArray
        Same dims as ``probs`` with ``draw_dim`` of size ``n_ensembles`` (coordinate
        0..n_ensembles−1); coordinates along the old draw dim (seed, context) are dropped;
        ``attrs["ensemble_size"] = E``.

    Raises
    ------
    ValueError
        If ``n_ensembles · E`` exceeds the number of draws (the message names E and the
        draw count), or E / n_ensembles < 1.

    Notes
    -----
    ``docs/science.md#ensembling``; Figs. 7b, 11.
    """
    require(probs, "probs", draw_dim)
    if int(E) != E or E < 1 or int(n_ensembles) != n_ensembles or n_ensembles < 1:
        raise ValueError(f"E and n_ensembles must be positive integers, got E={E}, n_ensembles={n_ensembles}")
    E, n_ensembles = int(E), int(n_ensembles)
    n = probs.sizes[draw_dim]
    need = E * n_ensembles
    if need > n:
        raise ValueError(
            f"ensemble size E={E} with {n_ensembles} non-overlapping ensembles needs {need} draws; "
            f"{draw_dim!r} has {n}"
        )
    order = np.arange(n) if rng is None else np.random.default_rng(rng).permutation(n)
    sel = probs.isel({draw_dim: order[:need]}).transpose(..., draw_dim)
    vals = np.asarray(sel.values, dtype=float)
    vals = vals.reshape(vals.shape[:-1] + (n_ensembles, E)).mean(-1)
    coords = {k: c for k, c in sel.coords.items() if draw_dim not in c.dims}
    coords[draw_dim] = np.arange(n_ensembles)
    out = xr.DataArray(vals, dims=sel.dims, coords=coords, name=probs.name, attrs=dict(probs.attrs))
    out.attrs["ensemble_size"] = E
    return out.transpose(*probs.dims)


def _summarise_questions(ds: xr.Dataset, question_dim: str) -> xr.Dataset:
    out = {}
    for name, v in ds.data_vars.items():
        if name.startswith("n_"):  # counts (n_draws, n_tests) are not metrics
            continue
        if question_dim in v.dims and np.issubdtype(v.dtype, np.number):
            out[name] = mean_over(v.astype(float), question_dim, v.notnull())
    if "variance" in ds and "error" in ds:
        out["incoherence"] = incoherence(ds["variance"], ds["error"], question_dim)
    return xr.Dataset(out)


def _bands(reps: xr.Dataset, rep_dim: str, ci: float, center: xr.Dataset) -> xr.Dataset:
    lo = reps.quantile((1 - ci) / 2, dim=rep_dim, skipna=True).drop_vars("quantile")
    hi = reps.quantile((1 + ci) / 2, dim=rep_dim, skipna=True).drop_vars("quantile")
    out = {}
    for name in reps.data_vars:
        out[name] = center[name]
        out[f"{name}_lower"] = lo[name]
        out[f"{name}_upper"] = hi[name]
    return xr.Dataset(out)


def _family_of(metric_fn: Callable, dim: str, draw_dim: str) -> tuple[str, float] | None:
    """``(family, delta)`` when ``metric_fn`` is a decomposition here (or a partial of one
    setting only ``delta`` / matching dims); else None."""
    kw: dict[str, Any] = {}
    fn = metric_fn
    if isinstance(fn, functools.partial):
        if fn.args:
            return None
        kw, fn = dict(fn.keywords), fn.func
    family = _FAMILIES.get(fn)
    if family is None or set(kw) - {"delta", "dim", "draw_dim"}:
        return None
    if kw.get("dim", dim) != dim or kw.get("draw_dim", draw_dim) != draw_dim:
        return None
    return family, float(kw.get("delta", DEFAULT_DELTA if family != "zero_one" else 0.0))


class _Sums:
    """Per-(line, replicate) sums over questions: means of every variable, incoherence."""

    def __init__(self) -> None:
        self.s: dict[str, np.ndarray] = {}
        self.n: dict[str, np.ndarray] = {}
        self.inc: list[np.ndarray] | None = None

    def add(self, res: dict[str, np.ndarray]) -> None:
        """``res[name]``: (lines, questions, replicates)."""
        for k, v in res.items():
            ok = ~np.isnan(v)
            s, n = np.where(ok, v, 0.0).sum(1), ok.sum(1)
            if k in self.s:
                self.s[k] += s
                self.n[k] += n
            else:
                self.s[k], self.n[k] = s, n
        if "variance" in res and "error" in res:
            v, e = res["variance"], res["error"]
            both = ~(np.isnan(v) | np.isnan(e))
            part = [np.where(both, v, 0.0).sum(1), np.where(both, e, 0.0).sum(1), both.any(1)]
            if self.inc is None:
                self.inc = part
            else:
                self.inc = [self.inc[0] + part[0], self.inc[1] + part[1], self.inc[2] | part[2]]

    def result(self) -> dict[str, np.ndarray]:
        with np.errstate(invalid="ignore", divide="ignore"):
            out = {k: np.where(self.n[k] > 0, self.s[k] / self.n[k], np.nan) for k in self.s}
            if self.inc is not None:
                num, den, anyq = self.inc
                out["incoherence"] = np.where(anyq & (den != 0), num / den, np.nan)
        return out


def _question_blocks(n_q: int, per_question: int, max_elements: int) -> list[slice]:
    step = max(1, int(max_elements) // max(1, per_question))
    return [slice(s, min(n_q, s + step)) for s in range(0, n_q, step)]


def _resample_indices(gen: np.random.Generator, valid: np.ndarray, n: int, n_boot: int) -> np.ndarray:
    """Draw indices (qb, lines, R, n) int64, uniform with replacement over each cell's valid
    draws.

    ``valid`` (lines, qb, D). ``gen.integers(0, n_valid)`` picks among the cell's valid draws
    (in draw order), generated question-major, so the stream does not depend on how the
    questions are blocked."""
    lines, qb, D = valid.shape
    vq = valid.transpose(1, 0, 2)
    if vq.all():
        return gen.integers(0, D, size=(qb, lines, n_boot, n), dtype=np.int64)
    nvalid = np.maximum(vq.sum(-1), 1)[:, :, None, None]
    k = gen.integers(0, np.broadcast_to(nvalid, (qb, lines, n_boot, n)), dtype=np.int64)
    order = np.argsort(~vq, axis=-1, kind="stable")  # valid draws first
    return np.take_along_axis(order[:, :, None, :], k, axis=-1)


def _block_weighted(
    x: np.ndarray, y: np.ndarray, idx: np.ndarray, family: str, delta: float
) -> dict[str, np.ndarray]:
    """Metrics of every replicate for a block: x (lines, qb, D, C), y (lines, qb, C),
    idx (qb, lines, R, n) -> {name: (lines, qb, R)}."""
    lines, qb, D, C = x.shape
    R, n = idx.shape[-2:]
    nb = lines * qb
    b = K.Block(x.transpose(1, 0, 2, 3).reshape(nb, D, C))  # cells question-major, as idx
    yb = y.transpose(1, 0, 2).reshape(nb, C)
    nvalid = b.valid.sum(-1)
    if b.present is not None and ((yb > 0) & ~b.present).any(-1)[nvalid > 0].any():
        raise BadInput("target on padding")
    flat = idx.reshape(nb * R, n)
    flat += (np.arange(nb * R, dtype=np.int64) * D)[:, None]  # idx is not used again
    counts = np.bincount(flat.ravel(), minlength=nb * R * D).reshape(nb, R, D).astype(float)
    mean = K.weighted_means(K.features(family, b, delta), counts)
    present = None if b.present is None else b.present[:, None, :]
    res = K.finish(family, mean, yb[:, None, :], present, b.n_opt[:, None, :], delta)
    names = [k for k in K.OUTPUTS[family] if not k.startswith("n_")]
    ok = (nvalid > 0)[:, None]
    out = {}
    for k in names:
        v = np.where(ok, np.broadcast_to(res[k], (nb, R)), np.nan)
        out[k] = v.reshape(qb, lines, R).transpose(1, 0, 2)
    return out


def _block_resampled(
    metric_fn: Callable, target: Any, x: np.ndarray, idx: np.ndarray, blk: xr.DataArray
) -> dict[str, np.ndarray]:
    """The straightforward replicate: copy the resampled draws, call ``metric_fn``.

    ``blk`` is the block as a DataArray (..., question, draw, option) for dims and coords."""
    idx = idx.transpose(1, 0, 2, 3)  # (lines, qb, R, n)
    samp = np.take_along_axis(x[:, :, None, :, :], idx[..., None], axis=3)  # (l, q, R, n, C)
    samp = samp.reshape(*blk.shape[:-2], *samp.shape[2:])
    line_dims, (qd, dd, od) = blk.dims[:-3], blk.dims[-3:]
    coords = {k: c for k, c in blk.coords.items() if dd not in c.dims and od not in c.dims}
    da = xr.DataArray(samp, dims=(*line_dims, qd, "replicate", dd, od), coords=coords)
    res = metric_fn(da, target)
    out = {}
    for name, v in res.data_vars.items():
        if name.startswith("n_") or not np.issubdtype(v.dtype, np.number):
            continue
        a = np.asarray(v.transpose(*line_dims, qd, "replicate").values, dtype=float)
        out[name] = a.reshape(-1, *a.shape[len(line_dims):])
    return out


def bootstrap_draws(
    metric_fn: Callable[[xr.DataArray, Any], xr.Dataset],
    probs: xr.DataArray,
    target: Any,
    n_draws_list: Sequence[int],
    n_boot: int = 100,
    rng: np.random.Generator | int | None = None,
    *,
    dim: str = "option",
    draw_dim: str = "draw",
    question_dim: str = "question",
    ci: float = 0.95,
    max_elements: int = 20_000_000,
    method: str = "auto",
) -> xr.Dataset:
    """Dataset-level metrics against the number of draws, by resampling draws (Fig. 21).

    For each n in ``n_draws_list`` and each of ``n_boot`` replicates, every question (in
    every cell) gets n draws sampled with replacement from its own valid draws; the metric
    is computed per question and averaged over the questions.

    Parameters
    ----------
    metric_fn : callable
        ``metric_fn(probs, target) -> xarray.Dataset`` with per-question variables, e.g.
        :func:`kl_decomposition` or :func:`brier_decomposition` (use functools.partial for
        ``delta``). Any other callable must be vectorised over an extra ``replicate`` dim.
    probs : xarray.DataArray
        Outcome vectors, dims including ``dim``, ``draw_dim`` and ``question_dim``; numpy or
        dask backed (read one block of questions at a time).
    target : Any
        Passed to ``metric_fn`` unchanged.
    n_draws_list : sequence of int
        Numbers of draws to resample (may exceed the number available).
    n_boot : int, default 100
        Replicates per n.
    rng : numpy.random.Generator or int, optional
        Source of randomness (a seed makes the result reproducible).
    dim, draw_dim, question_dim : str
    ci : float, default 0.95
        Central percentile band.
    max_elements : int, default 2e7
        Questions are processed in blocks of about this many sampled values (memory bound,
        8 bytes each); the result does not depend on it.
    method : {"auto", "weights", "resample"}
        ``"weights"``: resampling counts as weights of the decomposition's draw means (the
        KL, Brier and 0/1 decompositions, or partials of them setting ``delta``; no copy of
        the cube). ``"resample"``: copy the resampled draws and call ``metric_fn`` (any
        metric). ``"auto"``: weights when possible. Both use the same random indices, so
        they agree to rounding (tested to 1e-12).

    Returns
    -------
    xarray.Dataset
        Dim ``n_draws`` (coordinate = n_draws_list) plus the dims of ``probs`` other than
        option, draw and question. For each numeric per-question variable ``v`` of the
        metric (and ``incoherence`` = Σ variance / Σ error when both exist): ``v`` = mean
        over replicates of the question-averaged value, ``v_lower`` / ``v_upper`` = the
        percentile band, and ``v_full`` = the value with all draws.

    Raises
    ------
    ValueError
        Bad ``n_draws_list``, ``n_boot``, ``ci`` or ``method`` (``"weights"`` for a metric
        that is not one of the decompositions), or bad probabilities (named).

    Notes
    -----
    ``docs/science.md#bootstrap``; Fig. 21.
    """
    require(probs, "probs", dim, draw_dim, question_dim)
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 1 or any(int(n) != n or n < 1 for n in n_draws_list):
        raise ValueError("n_boot and every n in n_draws_list must be positive integers")
    if method not in ("auto", "weights", "resample"):
        raise ValueError(f"method must be 'auto', 'weights' or 'resample', got {method!r}")
    fam = _family_of(metric_fn, dim, draw_dim)
    if method == "weights" and fam is None:
        raise ValueError("method='weights' needs kl/brier/zero_one_decomposition (or a partial setting delta)")
    weighted = fam is not None and method != "resample"
    gen = np.random.default_rng(rng)
    p = as_float(probs).transpose(..., question_dim, draw_dim, dim)
    line_dims = p.dims[:-3]
    shape = p.shape
    n_lines = int(np.prod(shape[:-3], dtype=np.int64))
    D, C = shape[-2:]
    y = target_vector(target, p, dim).broadcast_like(p.isel({draw_dim: 0}, drop=True))
    y = np.asarray(y.transpose(*line_dims, question_dim, dim).values).reshape(n_lines, -1, C)
    line_coords = {k: c for k, c in p.coords.items() if set(c.dims) <= set(line_dims)}
    full = _summarise_questions(metric_fn(probs, target), question_dim)
    results = []
    for n in (int(v) for v in n_draws_list):
        sums = _Sums()
        per_q = n_lines * n_boot * max(n, D) * (2 if weighted else C)
        for qs in _question_blocks(shape[-3], per_q, max_elements):
            blk = p.isel({question_dim: qs})
            x = np.asarray(blk.values).reshape(n_lines, -1, D, C)
            _, valid = K.validity(x)
            idx = _resample_indices(gen, valid, n, n_boot)
            if weighted:
                try:
                    sums.add(_block_weighted(x, y[:, qs], idx, fam[0], fam[1]))
                except BadInput:
                    explain_bad_probs(blk, target, dim, draw_dim)
            else:
                sums.add(_block_resampled(metric_fn, target, x, idx, blk))
        reps = xr.Dataset(
            {k: xr.DataArray(v.reshape(*shape[:-3], n_boot), dims=(*line_dims, "replicate"),
                             coords=line_coords) for k, v in sums.result().items()}
        )
        with quiet():
            results.append(_bands(reps, "replicate", ci, reps.mean("replicate")))
    out = xr.concat(results, dim="n_draws").assign_coords(n_draws=list(n_draws_list))
    for name in full.data_vars:
        out[f"{name}_full"] = full[name]
    out.attrs.update(n_boot=n_boot, ci=ci, method="weights" if weighted else "resample")
    return out


def _accepts_weights(fn: Callable) -> bool:
    try:
        return "weights" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def bootstrap_questions(
    data: xr.Dataset | xr.DataArray,
    statistic: Callable[..., xr.DataArray | xr.Dataset],
    n_boot: int = 1000,
    rng: np.random.Generator | int | None = None,
    *,
    dim: str = "question",
    ci: float = 0.95,
    chunk: int = 100,
) -> xr.Dataset:
    """Percentile confidence intervals over questions (resampling questions with replacement).

    Parameters
    ----------
    data : xarray.Dataset or xarray.DataArray
        Per-question values, e.g. the Dataset returned by :func:`kl_decomposition`.
    statistic : callable
        Maps ``data`` to a DataArray or Dataset with ``dim`` reduced, vectorised over other
        dims, e.g. ``lambda ds: incoherence(ds.variance, ds.error)``. If it takes a
        ``weights`` keyword it is called as ``statistic(data, weights=w)`` with ``w`` the
        resampling counts, dims ``("replicate", dim)`` (e.g. ``lambda ds, weights=None:
        incoherence(ds.variance, ds.error, weights=weights)``): no copy of the data.
        Otherwise it is called on resampled copies carrying an extra ``replicate`` dim
        (``chunk`` replicates at once), so it must not reduce over dims it does not name.
    n_boot : int, default 1000
    rng : numpy.random.Generator or int, optional
    dim : str, default "question"
    ci : float, default 0.95
        Central percentile band.
    chunk : int, default 100
        Replicates evaluated at once (memory bound).

    Returns
    -------
    xarray.Dataset
        For each output ``v`` of the statistic (name ``v`` of a DataArray, else
        ``"estimate"``): ``v`` = the statistic on the full data, ``v_lower`` / ``v_upper``
        = the percentile band, ``v_std`` = the bootstrap standard deviation. The same
        resampled questions are used for every variable and every line (paired); the
        weighted and the copying call see the same resampled questions.

    Raises
    ------
    ValueError
        Bad ``n_boot`` or ``ci``, or ``dim`` missing.

    Notes
    -----
    ``docs/science.md#bootstrap``.
    """
    if dim not in data.dims:
        raise ValueError(f"data has dims {tuple(data.dims)} but lacks {dim!r}")
    if not 0 < ci < 1 or n_boot < 1:
        raise ValueError(f"need 0 < ci < 1 and n_boot >= 1, got ci={ci}, n_boot={n_boot}")
    gen = np.random.default_rng(rng)

    def as_ds(r: xr.DataArray | xr.Dataset) -> xr.Dataset:
        if isinstance(r, xr.DataArray):
            return r.to_dataset(name=r.name if r.name is not None else "estimate")
        return r

    center = as_ds(statistic(data))
    weighted = _accepts_weights(statistic)
    base = data.drop_vars([c for c in data.coords if dim in data[c].dims])
    nq = data.sizes[dim]
    reps = []
    done = 0
    while done < n_boot:
        m = min(chunk, n_boot - done)
        draws = gen.integers(0, nq, size=(m, nq))
        if weighted:
            flat = (np.arange(m)[:, None] * nq + draws).ravel()
            counts = np.bincount(flat, minlength=m * nq).reshape(m, nq).astype(float)
            w = xr.DataArray(counts, dims=("replicate", dim))
            reps.append(as_ds(statistic(base, weights=w)))
        else:
            idx = xr.DataArray(draws, dims=("replicate", dim))
            reps.append(as_ds(statistic(base.isel({dim: idx}))))
        done += m
    r = xr.concat(reps, dim="replicate")
    with quiet():
        out = _bands(r, "replicate", ci, center)
        for name in r.data_vars:
            out[f"{name}_std"] = r[name].std("replicate")
    out.attrs.update(n_boot=n_boot, ci=ci, method="weights" if weighted else "resample")
    return out
