"""Input checks and the missing-data rules shared by every metric family.

The rules (``docs/science.md#missing-data-and-padding``): cells and draws that were not run
are NaN; a draw counts only where its outcome vector is finite; an outcome entry that is NaN
in **every** draw of a question is *padding* (a 2-option question stored in a 4-option cube,
a task with fewer unit tests than the longest one); a question with no valid draw gives NaN,
never 0.

Public helpers here (:func:`present_options`, :func:`cells_run`) let figure builders use the
same option handling as the metrics instead of re-deriving it (e.g. selecting the questions a
cell ran without dropping padded-option questions).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["DEFAULT_DELTA", "PROB_ATOL", "TIE_ATOL", "TIE_RULE", "present_options", "cells_run"]

#: The smoothing constant δ (``docs/science.md#kl-decomposition``).
DEFAULT_DELTA = 1e-12
#: Tolerance on probability vectors: entries in [-tol, 1 + tol], sums within tol of 1.
PROB_ATOL = 1e-6
#: Entries within this of a vector's maximum tie for the argmax (``docs/science.md#ties``).
TIE_ATOL = 1e-9
#: The name of the tie rule of every argmax (accuracy, 0/1 decomposition), recorded in attrs.
TIE_RULE = "fractional"

Dims = str | Sequence[str]


class BadInput(Exception):
    """Raised by the fast kernels; the caller re-runs the xarray checks for the message."""


def as_dims(dim: Dims) -> tuple[str, ...]:
    return (dim,) if isinstance(dim, str) else tuple(dim)


def require(x: Any, name: str, *dims: str) -> xr.DataArray:
    """``x`` must be a DataArray having ``dims``; else TypeError / ValueError naming it."""
    if not isinstance(x, xr.DataArray):
        raise TypeError(f"{name} must be an xarray.DataArray, got {type(x).__name__}")
    missing = [d for d in dims if d not in x.dims]
    if missing:
        raise ValueError(f"{name} has dims {tuple(x.dims)} but lacks {missing}")
    return x


def as_float(x: xr.DataArray) -> xr.DataArray:
    """``x`` as float64 without a copy when it already is."""
    return x if x.dtype == np.float64 else x.astype(np.float64)


def where_first(bad: xr.DataArray) -> str:
    """Describe the first True cell of ``bad`` by its coordinates (for error messages)."""
    values = np.asarray(bad.values)
    idx = np.argwhere(values)[0]
    parts = []
    for d, i in zip(bad.dims, idx, strict=True):
        label = bad[d].values[i] if d in bad.coords else i
        if isinstance(label, np.generic):
            label = label.item()
        parts.append(f"{d}={label!r}")
    for name, c in bad.coords.items():  # scalar coordinates, e.g. a selected model
        if c.ndim == 0 and name not in bad.dims:
            parts.append(f"{name}={c.values.item()!r}")
    n = int(values.sum())
    return ", ".join(parts) + (f" (and {n - 1} more)" if n > 1 else "")


def valid_draws(
    x: xr.DataArray, dim: str, draw_dim: str, *, padding: bool, name: str
) -> tuple[xr.DataArray, xr.DataArray]:
    """Return ``(present, valid)``.

    ``present`` (dims of ``x`` minus ``draw_dim``): outcome entries that belong to the cell
    (with ``padding``: finite in at least one draw; otherwise all True). ``valid`` (dims of
    ``x`` minus ``dim``): draws whose outcome vector is finite on every present entry.
    Raises ValueError on ±inf.
    """
    values = np.asarray(x.values)
    if np.issubdtype(values.dtype, np.floating) and np.isinf(values).any():
        raise ValueError(f"{name} contains ±inf at {where_first(np.isinf(x))}; use NaN for missing")
    finite = x.notnull()
    if padding:
        present = finite.any(draw_dim)
        valid = (finite | ~present).all(dim) & finite.any(dim)
    else:
        present = xr.ones_like(finite.isel({draw_dim: 0}, drop=True), dtype=bool)
        valid = finite.all(dim)
    return present, valid


def mean_over(x: xr.DataArray, dim: Dims, where: xr.DataArray) -> xr.DataArray:
    """Mean of ``x`` over ``dim`` restricted to ``where``; NaN where no cell counts."""
    dims = as_dims(dim)
    w = where & x.notnull()
    s = x.where(w).sum(dims, min_count=1)
    n = w.sum(dims)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / n.where(n > 0)


def target_vector(target: Any, probs: xr.DataArray, dim: str, name: str = "target") -> xr.DataArray:
    """The target as a float vector over ``dim`` (one-hot for an index target).

    Raises ValueError naming the question for a missing target, an index out of range or
    not an integer, or a probability target that is not a probability vector.
    """
    if not isinstance(target, xr.DataArray):
        if np.ndim(target) != 0:
            raise TypeError(
                f"{name} must be an xarray.DataArray (dims e.g. ('question',)) or a scalar index"
            )
        target = xr.DataArray(target)
    other = [d for d in target.dims if d != dim and d not in probs.dims]
    if other:
        raise ValueError(f"{name} has dims {other} that probs {tuple(probs.dims)} lacks")
    shared = {d: probs.indexes[d] for d in target.dims if d in probs.indexes and d in target.indexes}
    if shared:
        target = target.reindex(shared)
    n_opt = probs.sizes[dim]
    if dim in target.dims:  # general probability target
        if target.sizes[dim] != n_opt:
            raise ValueError(f"{name} has {target.sizes[dim]} entries along {dim!r}, probs {n_opt}")
        y = target.astype(float).fillna(0.0)
        missing = target.isnull().all(dim)
        if bool(missing.any()):
            raise ValueError(f"{name} has no value for {where_first(missing)}")
        bad = (y < -PROB_ATOL).any(dim) | (abs(y.sum(dim) - 1) > PROB_ATOL)
        if bool(bad.any()):
            raise ValueError(f"{name} is not a probability vector over {dim!r} at {where_first(bad)}")
        return y.clip(min=0.0)
    t = target.astype(float)
    if bool(t.isnull().any()):
        raise ValueError(f"{name} has no value for {where_first(t.isnull())}")
    bad = (t != np.round(t)) | (t < 0) | (t >= n_opt)
    if bool(bad.any()):
        raise ValueError(
            f"{name} must be an integer option index in [0, {n_opt}); bad at {where_first(bad)}"
        )
    options = xr.DataArray(np.arange(n_opt), dims=dim)
    return (options == t).astype(float)


def explain_bad_probs(probs: xr.DataArray, target: Any, dim: str, draw_dim: str) -> None:
    """Raise the ValueError that names the first bad probability vector or target.

    The slow, xarray-based statement of the checks the kernels make; called only after a
    kernel found a problem, to produce the message.
    """
    probs = as_float(probs)
    present, valid = valid_draws(probs, dim, draw_dim, padding=True, name="probs")
    raw = probs.where(valid & present)
    bad = ((raw < -PROB_ATOL) | (raw > 1 + PROB_ATOL)).any(dim) | (
        abs(raw.sum(dim, min_count=1) - 1) > PROB_ATOL
    )
    if bool(bad.any()):
        raise ValueError(
            f"probs: draw is not a probability vector over {dim!r} (entries in [0, 1], sum 1 "
            f"within {PROB_ATOL}) at {where_first(bad)}"
        )
    y = target_vector(target, probs, dim)
    off = ((y > 0) & ~present).any(dim) & (valid.sum(draw_dim) > 0)
    if bool(off.any()):
        raise ValueError(
            f"target puts mass on an option that is NaN in every draw (padding) at {where_first(off)}"
        )
    raise ValueError("probs/target failed a check (no location found); see docs/science.md#missing-data-and-padding")


@contextlib.contextmanager
def quiet():
    """Silence numpy's empty-slice RuntimeWarnings (NaN results are intended there)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def present_options(probs: xr.DataArray, *, dim: str = "option", draw_dim: str = "draw") -> xr.DataArray:
    """Which outcome entries belong to each question: finite in at least one draw.

    Parameters
    ----------
    probs : xarray.DataArray
        Outcome vectors, dims including ``dim`` and ``draw_dim``, e.g. the cube's
        ``outcome(model, size, budget, question, draw, option)``.
    dim, draw_dim : str
        The outcome and draw dims.

    Returns
    -------
    xarray.DataArray
        Boolean, dims of ``probs`` minus ``draw_dim``: False on padding (an entry NaN in every
        draw, e.g. options C-E of a 2-option question in a 5-option cube) and everywhere in a
        cell that was not run.

    Notes
    -----
    ``docs/science.md#missing-data-and-padding``.
    """
    require(probs, "probs", dim, draw_dim)
    return probs.notnull().any(draw_dim).rename("present")


def cells_run(probs: xr.DataArray, *, dim: str = "option", draw_dim: str = "draw") -> xr.DataArray:
    """Which questions (cells) were run: at least one valid draw, padding allowed.

    A draw is valid when its vector is finite on every present option
    (:func:`present_options`); padded options do not make a question "not run". Use this in
    figure builders instead of ``outcome.notnull().all("option")``, which drops every
    question with fewer options than the cube.

    Parameters
    ----------
    probs : xarray.DataArray
        Outcome vectors, dims including ``dim`` and ``draw_dim``.
    dim, draw_dim : str

    Returns
    -------
    xarray.DataArray
        Boolean, dims of ``probs`` minus ``dim`` and ``draw_dim`` (e.g. ``(model, size,
        budget, question)``), named ``run``. Exactly where the decompositions give a
        non-NaN value (``n_draws > 0``).

    Notes
    -----
    ``docs/science.md#missing-data-and-padding``.
    """
    require(probs, "probs", dim, draw_dim)
    finite = probs.notnull()
    present = finite.any(draw_dim)
    valid = (finite | ~present).all(dim) & finite.any(dim)
    return valid.any(draw_dim).rename("run")
