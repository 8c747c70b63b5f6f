"""Decompositions of the other outcome kinds, and format-error counts.

SWE-bench coverage error (pass/fail per unit test), the variance of open-ended answers'
embeddings, and the A-norm decomposition of the synthetic optimizer's points
(``docs/science.md#other-outcomes``); format-error counts of multiple-choice cubes
(``docs/science.md#format-errors``). Missing data follow
``docs/science.md#missing-data-and-padding``: unit tests may be padded, embeddings and points
never are.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from hotmess.core.metrics.validation import (
    Dims,
    as_dims,
    mean_over,
    require,
    valid_draws,
    where_first,
)

__all__ = [
    "format_error_counts",
    "format_error_rate",
    "coverage_error",
    "embedding_variance",
    "point_decomposition",
]


def format_error_counts(
    format_error: xr.DataArray, *, dim: Dims = ("question", "draw")
) -> xr.Dataset:
    """Count answers in the wrong format (Table 1; ``docs/science.md#format-errors``).

    Parameters
    ----------
    format_error : xarray.DataArray
        The cube's per-draw format-error flag (bool, 0/1, or float with NaN for draws not
        run), dims e.g. ``(model, size, budget, question, draw)``.
    dim : str or sequence of str, default ("question", "draw")
        Dims to reduce.

    Returns
    -------
    xarray.Dataset
        ``count`` (format errors), ``total`` (draws run), ``rate`` = count / total (NaN where
        nothing ran), over the remaining dims.
    """
    dims = as_dims(dim)
    require(format_error, "format_error", *dims)
    run = format_error.notnull()
    flag = format_error.where(run, 0).astype(bool)
    count = flag.sum(dims)
    total = run.sum(dims)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = count / total.where(total > 0)
    return xr.Dataset({"count": count, "total": total, "rate": rate})


def format_error_rate(format_error: xr.DataArray, *, dim: Dims = ("question", "draw")) -> xr.DataArray:
    """Fraction of draws run whose answer was in the wrong format.

    See :func:`format_error_counts`; returns its ``rate`` (dimensionless, in [0, 1]).
    """
    return format_error_counts(format_error, dim=dim)["rate"].rename("format_error_rate")


def coverage_error(
    passes: xr.DataArray, *, test_dim: str = "test", draw_dim: str = "draw"
) -> xr.Dataset:
    """SWE-bench coverage error and its bias/variance split.

    Task i has T_i unit tests and R runs; ``y_rj ∈ {0, 1}`` = test j passes in run r;
    ``ȳ_j`` = mean over runs; the target is all ones.

    Parameters
    ----------
    passes : xarray.DataArray
        Pass (1) / fail (0) per test, dims ``(..., question, draw_dim, ..., test_dim)``. The
        test dim is padded with NaN (a test NaN in every run is not one of the task's tests,
        so T_i = number of non-padded tests); a run with NaN on any of the task's tests is
        not run and is skipped.
    test_dim, draw_dim : str
        Reduced dims.

    Returns
    -------
    xarray.Dataset
        Dims of ``passes`` minus ``test_dim`` and ``draw_dim``; dimensionless, in [0, 1]:

        - ``bias`` = (1/T) Σ_j (1 − ȳ_j)²  (BIAS²);
        - ``variance`` = (1/(R T)) Σ_r Σ_j (y_rj − ȳ_j)²;
        - ``error`` = (1/(R T)) Σ_r Σ_j (1 − y_rj)², computed directly (= bias + variance);
        - ``resolved`` = fraction of runs in which every test passes;
        - ``n_tests`` (T), ``n_draws`` (R).

        NaN where no run is valid or the task has no tests.

    Raises
    ------
    ValueError
        Missing dims, ±inf, or values other than 0/1.

    Notes
    -----
    ``docs/science.md#coverage-error`` (SWE-bench Verified).
    """
    require(passes, "passes", test_dim, draw_dim)
    y = passes.astype(float)
    present, valid = valid_draws(y, test_dim, draw_dim, padding=True, name="passes")
    y = y.where(valid & present)
    bad = (y.notnull() & (y != 0) & (y != 1)).any(test_dim)
    if bool(bad.any()):
        raise ValueError(f"passes must be 0 or 1 (NaN for missing); bad at {where_first(bad)}")
    n_tests = present.sum(test_dim)
    n_draws = valid.sum(draw_dim)
    ok = (n_tests > 0) & (n_draws > 0)
    ybar = mean_over(y, draw_dim, valid)
    bias = mean_over((1 - ybar) ** 2, test_dim, present)
    variance = mean_over(mean_over((y - ybar) ** 2, test_dim, present), draw_dim, valid)
    error = mean_over(mean_over((1 - y) ** 2, test_dim, present), draw_dim, valid)
    resolved = mean_over((y.where(present, 1.0) == 1).all(test_dim).astype(float), draw_dim, valid)
    ds = xr.Dataset(
        {
            "bias": bias.where(ok),
            "variance": variance.where(ok),
            "error": error.where(ok),
            "resolved": resolved.where(ok),
            "n_tests": n_tests,
            "n_draws": n_draws,
        }
    )
    ds.attrs.update(family="coverage error")
    return ds


def embedding_variance(
    emb: xr.DataArray, *, dim: str = "embedding", draw_dim: str = "draw"
) -> xr.DataArray:
    """Variance of open-ended answers: mean squared Euclidean distance to the mean embedding.

    Parameters
    ----------
    emb : xarray.DataArray
        Embeddings, dims ``(..., draw_dim, ..., dim)``. A draw with any NaN entry is not run.
    dim, draw_dim : str
        Reduced dims.

    Returns
    -------
    xarray.DataArray
        ``E_ε ‖e_ε − ē‖²`` in squared embedding units; dims of ``emb`` minus ``dim`` and
        ``draw_dim``. NaN where no draw is valid (0 for a single draw).

    Notes
    -----
    ``docs/science.md#embedding-variance`` (model-written evals, open-ended; no bias term).
    """
    require(emb, "emb", dim, draw_dim)
    e = emb.astype(float)
    _, valid = valid_draws(e, dim, draw_dim, padding=False, name="emb")
    e = e.where(valid)
    mean = mean_over(e, draw_dim, valid)
    d2 = ((e - mean) ** 2).sum(dim, min_count=1)
    return mean_over(d2, draw_dim, valid).rename("variance")


def point_decomposition(
    x: xr.DataArray,
    minimiser: xr.DataArray,
    A: xr.DataArray | np.ndarray,
    *,
    dim: str = "coordinate",
    draw_dim: str = "draw",
    dim2: str | None = None,
) -> xr.Dataset:
    """Bias/variance of points in the A-norm (synthetic optimizer).

    ``‖v‖²_A = vᵀ A v``; with ``b`` the minimiser and expectations over rollouts (draws):
    bias = ‖E x − b‖²_A, variance = E ‖x − E x‖²_A, error = E ‖x − b‖²_A.

    Parameters
    ----------
    x : xarray.DataArray
        Points, dims ``(..., draw_dim, ..., dim)``, e.g. ``(size, question, draw, step,
        coordinate)`` (``step`` is kept, so the result is per step). A draw with any NaN
        coordinate is not run.
    minimiser : xarray.DataArray
        ``b``, dims ``(..., dim)`` (e.g. ``(question, coordinate)``), broadcast against ``x``.
    A : xarray.DataArray or numpy.ndarray
        The quadratic's matrix. As a DataArray its dims are ``(..., dim, dim2)`` (row
        ``dim``, column ``dim2``; ``dim2`` defaults to ``dim + "2"``, i.e. ``coordinate2``)
        and may vary per problem, e.g. ``(question, coordinate, coordinate2)``. A 2-D numpy
        array of shape (d, d) is one matrix shared by all. Symmetric positive definite in
        the paper; only ``vᵀAv`` is used.
    dim, draw_dim, dim2 : str
        Dimension names.

    Returns
    -------
    xarray.Dataset
        Dims of ``x`` minus ``dim`` and ``draw_dim`` (broadcast with those of ``b``/``A``);
        ``bias``, ``variance``, ``error`` (computed directly; = bias + variance), in the
        squared units of the quadratic's value (f(x) = ½‖x − b‖²_A, so error = 2 E f(x)),
        and ``n_draws``. NaN where no draw is valid.

    Raises
    ------
    ValueError
        Missing dims, ±inf, or an ``A`` whose shape does not match ``dim``.

    Notes
    -----
    ``docs/science.md#a-norm-point-decomposition`` (synthetic optimizer).
    """
    require(x, "x", dim, draw_dim)
    dim2 = dim2 or f"{dim}2"
    d = x.sizes[dim]
    if not isinstance(A, xr.DataArray):
        A = np.asarray(A, dtype=float)
        if A.shape != (d, d):
            raise ValueError(f"A has shape {A.shape}; expected ({d}, {d}) for {d} {dim!r} entries")
        A = xr.DataArray(A, dims=(dim, dim2))
    require(A, "A", dim, dim2)
    if A.sizes[dim] != d or A.sizes[dim2] != d:
        raise ValueError(f"A has sizes {dict(A.sizes)}; expected {d} along {dim!r} and {dim2!r}")
    require(minimiser, "minimiser", dim)
    A = A.drop_vars([c for c in (dim, dim2) if c in A.coords])
    xv = x.astype(float)
    _, valid = valid_draws(xv, dim, draw_dim, padding=False, name="x")
    xv = xv.where(valid)

    def anorm(v: xr.DataArray) -> xr.DataArray:
        v1 = v.drop_vars(dim, errors="ignore")
        v2 = v1.rename({dim: dim2})
        return (v1 * A * v2).sum((dim, dim2), min_count=1)

    mean = mean_over(xv, draw_dim, valid)
    n = valid.sum(draw_dim)
    ok = n > 0
    bias = anorm(mean - minimiser)
    variance = mean_over(anorm(xv - mean), draw_dim, valid)
    error = mean_over(anorm(xv - minimiser), draw_dim, valid)
    return xr.Dataset(
        {
            "bias": bias.where(ok),
            "variance": variance.where(ok),
            "error": error.where(ok),
            "n_draws": n,
        },
        attrs={"family": "A-norm"},
    )
