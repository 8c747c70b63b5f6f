"""Shared pieces of the multiple-choice figure builders (GPQA, MMLU; ``docs/science.md``,
"Figures: multiple choice (GPQA, MMLU) and Table 1").

Everything a figure's JSON holds is computed here or in :mod:`hotmess.core.metrics` from the
cube, never inside plotting code. Conventions:

- A *cell* is one (model, size, budget); it *ran* when at least one of its questions has a
  valid draw (``n_draws > 0`` in a decomposition). Cells not run are skipped, so a builder
  works with any subset of models, sizes and budgets.
- Options with NaN in every draw of a question are padding; the metric functions handle that
  (questions are never dropped here because of a padded option).
- Sizes are ordered by their ``params`` coordinate (NaN last, then cube order).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core import metrics, schema

#: Decompositions by family name (figure option ``metric_family``).
FAMILIES = {"kl": metrics.kl_decomposition, "brier": metrics.brier_decomposition,
            "zero_one": metrics.zero_one_decomposition}
FAMILY_LABEL = {"kl": "KL", "brier": "Brier", "zero_one": "0/1"}


class FigureInputError(ValueError):
    """A cube cannot feed a figure (wrong kind, missing variable, bad option); one line."""


def options(defaults: Mapping[str, Any], settings: Mapping[str, Any] | None) -> dict[str, Any]:
    """The builder's options: ``defaults`` overridden by the keys ``settings`` holds."""
    settings = settings or {}
    return {k: settings.get(k, v) for k, v in defaults.items()}


def check_cubes(cubes: Mapping[str, xr.Dataset], variables: Iterable[str], figure: str) -> None:
    """Check every cube is a multiple-choice (``probabilities``) cube holding ``variables``.

    Raises
    ------
    FigureInputError
        One line naming the figure, the cube and what is wrong (wrong kind, or the missing
        variables with the command that makes the cube, from :func:`hotmess.core.schema.require`).
    """
    for name, ds in cubes.items():
        kind = schema.kind_of(ds)
        if kind != "probabilities":
            raise FigureInputError(
                f"figure {figure} reads multiple-choice cubes (outcome over 'option'); the "
                f"{name!r} cube is of kind {kind!r}")
        try:
            schema.require(ds, variables, experiment=name, needed_by=f"figure {figure}")
        except schema.MissingVariableError as exc:
            raise FigureInputError(str(exc)) from None


def sizes_by_params(ds: xr.Dataset, model: str) -> list[str]:
    """The model's size labels ordered by parameter count (NaN last, then cube order)."""
    sizes = [str(s) for s in ds["size"].values]
    if "params" not in ds.coords and "params" not in ds:
        return sizes
    p = ds["params"].sel(model=model).values.astype(float)
    order = sorted(range(len(sizes)), key=lambda i: (not np.isfinite(p[i]), p[i] if np.isfinite(p[i]) else 0, i))
    return [sizes[i] for i in order]


def params_of(ds: xr.Dataset, model: str, size: str) -> float:
    """Parameter count of (model, size) (NaN when unknown)."""
    if "params" not in ds.variables:
        return float("nan")
    return float(ds["params"].sel(model=model, size=size))


def ran(dec: xr.Dataset) -> xr.DataArray:
    """Bool per cell (the dims of ``dec`` minus ``question``): at least one valid draw."""
    return (dec["n_draws"] > 0).any("question")


def cells(ds: xr.Dataset, dec: xr.Dataset, budgets: Mapping[str, Any] | None = None
          ) -> Iterator[tuple[str, str, str]]:
    """(model, size, budget) of every cell that ran, models in cube order, sizes by params.

    ``budgets``: optional mapping model -> budget label (or list of labels) to keep; a model
    absent from it (or whose labels are not in the cube) keeps all its budgets.
    """
    ok = ran(dec)
    all_b = [str(b) for b in ds["budget"].values]
    for model in (str(m) for m in ds["model"].values):
        want = (budgets or {}).get(model)
        want = [want] if isinstance(want, str) else list(want or [])
        keep = [b for b in want if b in all_b] or all_b
        for size in sizes_by_params(ds, model):
            for budget in keep:
                if bool(ok.sel(model=model, size=size, budget=budget)):
                    yield model, size, budget


def run_budgets(ds: xr.Dataset, dec: xr.Dataset, model: str, size: str) -> list[str]:
    """Budget labels (cube order) of the cells of (model, size) that ran."""
    ok = ran(dec).sel(model=model, size=size)
    return [str(b) for b in ds["budget"].values if bool(ok.sel(budget=b))]


def label(model: str, size: str, budget: str, cube: str | None = None) -> str:
    """Legend label: ``model size · budget`` (sizes ``default``/budgets ``none`` left out)."""
    out = model + ("" if size in ("default", "") else f" {size}")
    out += "" if budget in ("none", "") else f" · {budget}"
    return f"{cube}: {out}" if cube else out


def decompose(ds: xr.Dataset, family: str) -> xr.Dataset:
    """Per-question decomposition of the whole cube (model, size, budget, question).

    Raises
    ------
    FigureInputError
        Unknown family.
    """
    if family not in FAMILIES:
        raise FigureInputError(f"metric_family must be one of {list(FAMILIES)}, got {family!r}")
    return FAMILIES[family](ds["outcome"], ds["target"])


def length_of(ds: xr.Dataset, variable: str) -> xr.DataArray:
    """Per-draw length (tokens) named by a figure option (``output_tokens`` or
    ``reasoning_tokens``).

    Raises
    ------
    FigureInputError
        The cube lacks the variable.
    """
    if variable not in ds:
        raise FigureInputError(f"option length={variable!r}: the cube has no such variable "
                               f"(use output_tokens or reasoning_tokens)")
    return ds[variable].astype(float)


def question_length(length: xr.DataArray) -> xr.DataArray:
    """Mean length over the draws that have one (NaN where none)."""
    return length.mean("draw", skipna=True)


def trend_slope(x: Any, y: Any, *, log_x: bool = True) -> float:
    """Ordinary least-squares slope of ``y`` on ``log x`` (or on ``x``), NaN pairs skipped.

    The claims' measure of "rises with length / size": the change of y per e-fold of x.

    Returns
    -------
    float
        The slope; NaN with fewer than two distinct finite x (or non-positive x with
        ``log_x``).
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    if log_x:
        ok &= x > 0
    x, y = x[ok], y[ok]
    if np.unique(x).size < 2:
        return float("nan")
    lx = np.log(x) if log_x else x
    return float(np.polyfit(lx, y, 1)[0])


def positive_power_fit(x: Any, y: Any) -> dict[str, Any]:
    """:func:`hotmess.core.metrics.power_law_fit` on the points with x > 0 and y > 0.

    Returns
    -------
    dict
        ``alpha`` (y ∝ x^−alpha), ``slope`` (= −alpha, the signed log-log slope the paper's
        legends print), ``prefactor``, ``r2``, ``n_points`` used; NaN values with fewer
        than two distinct x.
    """
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if np.unique(x[ok]).size < 2:
        nan = float("nan")
        return {"alpha": nan, "slope": nan, "prefactor": nan, "r2": nan, "n_points": int(ok.sum())}
    fit = metrics.power_law_fit(x[ok], y[ok])
    return {"alpha": float(fit.alpha), "slope": -float(fit.alpha), "prefactor": float(fit.prefactor),
            "r2": float(fit.r2), "n_points": int(ok.sum())}


def floats(a: Any) -> list[float]:
    """A 1-D array as a list of floats (NaN kept; the JSON writer turns it into null)."""
    return [float(v) for v in np.asarray(a, dtype=float).ravel()]


def by_bucket(dec: xr.Dataset, length: xr.DataArray, n_buckets: int) -> xr.Dataset:
    """:func:`hotmess.core.metrics.incoherence_by_bucket` of one family's decomposition, with
    its bias (``dec`` and ``length`` over the same cells)."""
    return metrics.incoherence_by_bucket(dec["variance"], dec["error"], length, int(n_buckets),
                                         bias=dec["bias"])


def correct_probability(probs: xr.DataArray, target: xr.DataArray) -> xr.DataArray:
    """Mean over valid draws of the probability put on the correct option (per question).

    The probability-format accuracy of Fig. 8 (docs/science.md: "models give nonzero values to
    non-chosen answers"; derived). Padding options (NaN in every draw) are ignored; a draw
    counts where its non-padding options are finite.

    Parameters
    ----------
    probs : xarray.DataArray
        Probability vectors, dims (..., question, draw, option).
    target : xarray.DataArray
        Correct option index per question.

    Returns
    -------
    xarray.DataArray
        In [0, 1]; dims of ``probs`` minus draw and option; NaN where no draw is valid.
    """
    pad = probs.isnull().all("draw")
    valid = (probs.notnull() | pad).all("option") & probs.notnull().any("option")
    onehot = xr.DataArray(np.arange(probs.sizes["option"]), dims="option") == target
    pc = probs.where(onehot).sum("option", min_count=1)
    return pc.where(valid).mean("draw", skipna=True).rename("correct_probability")


def group_mean(values: xr.DataArray, ids: xr.DataArray, n: int) -> xr.DataArray:
    """Mean of per-question ``values`` within each group id 0..n−1 (NaN skipped); new dim
    ``group``."""
    parts = [values.where(ids == g).mean("question", skipna=True) for g in range(n)]
    return xr.concat(parts, dim="group").assign_coords(group=list(range(n)))


def new_figure(nrows: int, ncols: int, w: float = 4.2, h: float = 3.3):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False)
    return fig, axes


def empty_note(ax, text: str) -> None:
    """Write ``text`` in the middle of an axis that has nothing to show (degenerate figure)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=8, wrap=True)


#: GPQA writer difficulty labels (``Writer's Difficulty Estimate``), easiest first, by prefix.
GPQA_LEVELS = ("Easy undergraduate", "Hard undergraduate", "Hard graduate", "Post-graduate")


def difficulty_label(raw: Any) -> str:
    """Short GPQA difficulty label of a ``difficulty`` coordinate value (``"unlabelled"`` when
    it matches none of :data:`GPQA_LEVELS`)."""
    s = str(raw).strip()
    for level in GPQA_LEVELS:
        if s.lower().startswith(level.lower()):
            return level
    return "unlabelled"


def difficulty_levels(ds: xr.Dataset) -> tuple[list[str], np.ndarray]:
    """The difficulty levels present (easiest first) and each question's level; one level
    ``"all"`` when the cube has no ``difficulty`` coordinate (MMLU)."""
    if "difficulty" not in ds.coords:
        return ["all"], np.array(["all"] * ds.sizes["question"], dtype=object)
    lab = np.array([difficulty_label(v) for v in ds["difficulty"].values], dtype=object)
    levels = [lv for lv in (*GPQA_LEVELS, "unlabelled") if (lab == lv).any()]
    return levels, lab


def finish(fig) -> None:
    """Lay the figure out; log axes spanning more than a decade keep only their major tick
    labels (their minor labels would overlap)."""
    from matplotlib.ticker import NullFormatter

    for ax in fig.axes:
        for axis, scale, lim in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()),
                                 (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
            if scale == "log" and min(lim) > 0 and max(lim) / min(lim) > 10:
                axis.set_minor_formatter(NullFormatter())
    fig.tight_layout()
