"""Helpers shared by the SWE-bench, model-written-eval and transcript figure builders.

A *line* of a figure is one (cube, model, size, budget) cell that was run. Every number the
builders report comes from :mod:`hotmess.core.metrics` (bucketing, decompositions, fits);
this module only selects cells and gathers those numbers into JSON-ready lists
(``docs/science.md``, "Figures: SWE-bench, model-written evals, survey, transcripts, report
page").
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core import metrics


def ran_questions(ds: xr.Dataset, var: str = "outcome") -> xr.DataArray:
    """Boolean per question (and cell): at least one draw of ``var`` holds a finite value."""
    x = ds[var].notnull()
    extra = [d for d in x.dims if d not in ("model", "size", "budget", "question")]
    return x.any(extra) if extra else x


def cells(ds: xr.Dataset, var: str = "outcome") -> Iterator[tuple[str, str, str, xr.Dataset]]:
    """Every (model, size, budget) cell of a sampled cube that was run.

    Yields
    ------
    (model, size, budget, cell)
        ``cell`` is ``ds`` at that cell, restricted to the questions with at least one
        finite draw of ``var`` (dims ``question x draw [x outcome dim]``).
    """
    budgets = ds["budget"].values if "budget" in ds.dims else [None]
    for model in ds["model"].values:
        for size in ds["size"].values:
            for budget in budgets:
                sel = {"model": model, "size": size}
                if budget is not None:
                    sel["budget"] = budget
                cell = ds.sel(sel)
                ran = ran_questions(cell, var)
                if not bool(ran.any()):
                    continue
                yield str(model), str(size), ("none" if budget is None else str(budget)), \
                    cell.isel(question=np.flatnonzero(ran.values))


def line_label(cube: str, model: str, size: str, budget: str, n_cubes: int) -> str:
    """Legend label of a line: ``model size [· budget b]`` (prefixed by the cube if several)."""
    label = f"{model} {size}" + (f" · budget {budget}" if budget not in ("none", "") else "")
    return f"{cube}: {label}" if n_cubes > 1 else label


def floats(x: Any) -> list[float | None]:
    """A 1-D array as a list of floats, NaN as ``None`` (JSON null)."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(x, dtype=float).ravel()]


def bucketed(
    variance: xr.DataArray,
    error: xr.DataArray | None,
    length: xr.DataArray,
    n_buckets: int,
    *,
    bias: xr.DataArray | None = None,
    extra: dict[str, xr.DataArray] | None = None,
) -> dict[str, Any] | None:
    """Per-bucket numbers of one line: equal-size buckets of questions by mean length.

    Parameters
    ----------
    variance, error : xarray.DataArray
        Per question (dim ``question``). ``error`` may be ``None`` (open-ended answers have
        no error): then only the mean variance per bucket is reported.
    length : xarray.DataArray
        Length per draw (``question x draw``; tokens or actions), averaged per question by
        :func:`hotmess.core.metrics.length_buckets`.
    n_buckets : int
        Wanted buckets; a line with fewer usable questions gets one bucket per question.
    bias : xarray.DataArray, optional
        Per-question bias; its mean per bucket is added.
    extra : dict, optional
        More per-question values (e.g. ``score``); their mean per bucket is added.

    Returns
    -------
    dict or None
        ``x`` (mean length of the bucket's questions), ``variance``, ``error``, ``bias`` and
        each ``extra`` (means over the bucket's questions), ``incoherence`` (Σ variance /
        Σ error, :func:`hotmess.core.metrics.incoherence_by_group`), ``n_questions``,
        ``n_buckets``; ``None`` when no question has a finite length and variance.
    """
    keep = variance.notnull() if error is None else variance.notnull() & error.notnull()
    qmask = keep & length.notnull().any("draw")
    k = min(int(n_buckets), int(qmask.sum()))
    if k < 1:
        return None
    ids = metrics.length_buckets(length.where(keep), k)
    err = variance if error is None else error  # placeholder denominator, not reported
    g = metrics.incoherence_by_group(variance, err, ids, n_groups=k, length=length, bias=bias,
                                     group_dim="bucket")
    out: dict[str, Any] = {
        "x": floats(g["length"].values),
        "variance": floats(g["variance"].values),
        "n_questions": [int(v) for v in g["n_questions"].values],
        "n_buckets": k,
    }
    if error is not None:
        out["incoherence"] = floats(g["incoherence"].values)
        out["error"] = floats(g["error"].values)
    if bias is not None:
        out["bias"] = floats(g["bias"].values)
    for name, per_q in (extra or {}).items():
        out[name] = floats([float(per_q.where(ids == b).mean("question", skipna=True)) for b in range(k)])
    return out


def rises(x: list[float | None], y: list[float | None]) -> bool | None:
    """Whether y at the longest bucket exceeds y at the shortest (pairs with finite x and y).

    ``None`` (not computable) with fewer than two such pairs or when the first and last x
    are equal (no spread of length to speak of).
    """
    pairs = [(a, b) for a, b in zip(x, y, strict=True)
             if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
    if len(pairs) < 2 or pairs[-1][0] <= pairs[0][0]:
        return None
    return pairs[-1][1] > pairs[0][1]


def loglog_slope(x: Any, y: Any) -> dict[str, Any]:
    """Least-squares slope of log y on log x (:func:`hotmess.core.metrics.power_law_fit`).

    Points with a non-positive or non-finite x or y cannot enter a log-log fit and are
    counted in ``n_excluded``.

    Returns
    -------
    dict
        ``slope`` (= −alpha; > 0: y rises with x), ``prefactor``, ``r2``, ``n_points``,
        ``n_excluded``; ``slope`` is ``None`` with fewer than two distinct x.
    """
    xv = np.asarray(x, dtype=float).ravel()
    yv = np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(xv) & np.isfinite(yv) & (xv > 0) & (yv > 0)
    out: dict[str, Any] = {"n_points": int(ok.sum()), "n_excluded": int((~ok).sum())}
    if np.unique(xv[ok]).size < 2:
        return {**out, "slope": None, "prefactor": None, "r2": None}
    fit = metrics.power_law_fit(xv[ok], yv[ok])
    r2 = float(fit.r2)
    return {**out, "slope": -float(fit.alpha), "prefactor": float(fit.prefactor),
            "r2": r2 if math.isfinite(r2) else None}


def subset_of(cell: xr.Dataset, subset: str | None) -> xr.Dataset:
    """The questions of one subset (``subject``); ``None`` or ``"all"``: every question."""
    if subset in (None, "all"):
        return cell
    return cell.isel(question=np.flatnonzero(cell["subject"].values.astype(str) == subset))


def subsets_in(ds: xr.Dataset) -> list[str]:
    """The subsets (``subject`` values) of a cube, in first-seen order."""
    return list(dict.fromkeys(str(s) for s in ds["subject"].values))
