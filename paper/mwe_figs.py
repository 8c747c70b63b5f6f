"""Model-written-eval figures: Fig. 2c, 23 and 24 (``docs/science.md``,
"Figures: SWE-bench, model-written evals, survey, transcripts, report page").

- Multiple-choice cubes (``outcome`` over ``option``, ``target`` = the option showing the
  desired behaviour): per question the KL decomposition
  (:func:`hotmess.core.metrics.kl_decomposition`); questions of one subset in equal-size
  buckets by their mean ``output_tokens`` (the paper's MWE length); per bucket KL bias and
  variance (means) and incoherence (Σ variance / Σ error).
- Open-ended cubes (``outcome`` over ``embedding``): per question the embedding variance
  (:func:`hotmess.core.metrics.embedding_variance`, mean squared distance to the mean
  embedding); no bias, so no incoherence.

Fig. 2c: left, MC KL incoherence vs output-token buckets on one subset (the paper's
"self-reported survival instinct"); right, open-ended embedding variance vs output tokens
(subset, and buckets vs per-question scatter, are OPEN). Fig. 23: five subsets x (bias,
variance, incoherence) vs buckets, one line per model. Fig. 24: every subset, per-question
embedding variance vs mean output tokens, a log-log least-squares line per model
(:func:`hotmess.core.metrics.power_law_fit`) fitted to every point with a positive variance;
the display is clipped below at ``display_floor`` (1e-4 in the paper).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core import metrics
from hotmess.paper.cells import (
    bucketed,
    cells,
    floats,
    line_label,
    loglog_slope,
    rises,
    subset_of,
    subsets_in,
)
from hotmess.paper.claims import all_claim, threshold_claim
from hotmess.paper.registry import figure

MC_CUBES = ("mwe_mc_frontier", "mwe_cpu")
OPEN_CUBES = ("mwe_open_frontier", "mwe_open_cpu")
#: The five subsets of Fig. 23, in the paper's panel order (a)-(e).
FIG23_SUBSETS = ("corrigible-more-HHH", "myopic-reward", "power-seeking-inclination",
                 "survival-instinct", "wealth-seeking-inclination")
N_BUCKETS_HELP = "questions per line are cut into this many equal-size buckets by mean output tokens (OPEN)"


def mc_bucket_lines(cubes: dict[str, xr.Dataset], subset: str | None, n_buckets: int) -> list[dict[str, Any]]:
    """KL bias, variance and incoherence per output-token bucket, one entry per run cell.

    Returns
    -------
    list of dict
        ``cube, model, size, budget, label, subset`` and the keys of
        :func:`hotmess.paper.cells.bucketed` (``x`` in output tokens; ``bias``, ``variance``,
        ``error`` in nats, means over the bucket's questions; ``incoherence``).
    """
    out = []
    for cube, model, size, budget, sub in _subset_cells(cubes, subset):
        kl = metrics.kl_decomposition(sub["outcome"], sub["target"])
        nums = bucketed(kl["variance"], kl["error"], sub["output_tokens"], n_buckets, bias=kl["bias"])
        if nums is None:
            continue
        out.append({"cube": cube, "model": model, "size": size, "budget": budget, "subset": subset or "all",
                    "label": line_label(cube, model, size, budget, len(cubes)), **nums})
    return out


def _subset_cells(cubes: dict[str, xr.Dataset], subset: str | None):
    """``(cube, model, size, budget, cell)`` of every run cell restricted to ``subset``
    (cells without a question of it are skipped)."""
    for cube, ds in cubes.items():
        for model, size, budget, cell in cells(ds):
            sub = subset_of(cell, subset)
            if sub.sizes["question"]:
                yield cube, model, size, budget, sub


def open_points(cubes: dict[str, xr.Dataset], subset: str | None) -> list[dict[str, Any]]:
    """Per-question embedding variance and mean output tokens, one entry per run cell.

    Returns
    -------
    list of dict
        ``cube, model, size, budget, label, subset, question`` (ids), ``x`` (mean output
        tokens over the question's draws), ``variance`` (squared embedding units);
        ``cell`` is kept for bucketing (dropped before JSON).
    """
    out = []
    for cube, model, size, budget, sub in _subset_cells(cubes, subset):
        var = metrics.embedding_variance(sub["outcome"])
        x = sub["output_tokens"].mean("draw", skipna=True)
        out.append({"cube": cube, "model": model, "size": size, "budget": budget, "subset": subset or "all",
                    "label": line_label(cube, model, size, budget, len(cubes)),
                    "question": [str(q) for q in sub["question"].values],
                    "x": floats(x.values), "variance": floats(var.values),
                    "_var": var, "_len": sub["output_tokens"]})
    return out


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _series(y: list[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in y]


@figure("fig02c", cubes=MC_CUBES + OPEN_CUBES, need="any", variables=("outcome", "output_tokens", "subject"),
        options={"n_buckets": 5, "mc_subset": "survival-instinct", "open_subset": "all",
                 "open_display": "buckets"},
        option_help={"n_buckets": N_BUCKETS_HELP,
                     "mc_subset": "subset of the multiple-choice panel (paper: self-reported survival instinct)",
                     "open_subset": "subset of the open-ended panel, or 'all' (OPEN)",
                     "open_display": "'buckets' (mean variance per output-token bucket) or 'scatter' "
                                     "(one point per question) (OPEN)"},
        title="Model-written evals: MC KL incoherence and open-ended embedding variance vs output "
              "tokens (Fig. 2c)",
        caption="Left: multiple-choice format, KL incoherence against the aligned answer per "
                "output-token bucket (one subset). Right: open-ended format, embedding variance "
                "of the answers against output tokens.")
def fig02c(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    """Fig. 2c. Returns ``(Figure, {"mc": [...mc_bucket_lines], "open": [...], settings,
    "claims"})``; ``open`` lines hold buckets (``x``, ``variance``) or per-question points."""
    import matplotlib.pyplot as plt

    n = int(settings.get("n_buckets", 5))
    mc_subset = settings.get("mc_subset", "survival-instinct")
    open_subset = settings.get("open_subset", "all")
    display = settings.get("open_display", "buckets")
    if display not in ("buckets", "scatter"):
        raise ValueError(f"fig02c option open_display must be 'buckets' or 'scatter', not {display!r}")
    mc = {c: ds for c, ds in cubes.items() if "option" in ds.dims}
    op = {c: ds for c, ds in cubes.items() if "embedding" in ds.dims}
    mc_lines = mc_bucket_lines(mc, mc_subset, n)
    open_lines = []
    for row in open_points(op, open_subset):
        if display == "buckets":
            nums = bucketed(row["_var"], None, row["_len"], n)
            row = {k: row[k] for k in ("cube", "model", "size", "budget", "subset", "label")}
            if nums is None:
                continue
            row.update(nums)
        open_lines.append(_public(row))
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 4))
    for r in mc_lines:
        axes[0].plot(r["x"], _series(r["incoherence"]), marker="o", label=r["label"])
    axes[0].set_title(f"multiple choice: {mc_subset}", fontsize=9)
    axes[0].set_xlabel("mean output tokens (bucket)")
    axes[0].set_ylabel("KL incoherence")
    axes[0].set_ylim(0, 1)
    for r in open_lines:
        style = {"marker": "o"} if display == "buckets" else {"marker": "o", "ls": "none", "ms": 3}
        axes[1].plot(r["x"], _series(r["variance"]), label=r["label"], **style)
    axes[1].set_title(f"open-ended: {open_subset}", fontsize=9)
    axes[1].set_xlabel("mean output tokens" + (" (bucket)" if display == "buckets" else " (question)"))
    axes[1].set_ylabel("embedding variance")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, "no cube with this format", ha="center", va="center", transform=ax.transAxes,
                    color="0.4", fontsize=8)
    fig.tight_layout()
    res = {f"MC {r['label']}": rises(r["x"], r["incoherence"]) for r in mc_lines}
    if display == "buckets":
        res.update({f"open {r['label']}": rises(r["x"], r["variance"]) for r in open_lines})
    else:
        res.update({f"open {r['label']}": (None if (s := loglog_slope(r["x"], r["variance"])["slope"]) is None
                                           else s > 0) for r in open_lines})
    claim = all_claim("fig02c", "on model-written evals, incoherence (multiple choice) and embedding "
                      "variance (open-ended) rise with output length",
                      "MC KL incoherence and open-ended embedding variance at the longest bucket > "
                      "the shortest (scatter: log-log slope > 0), every line", res)
    return fig, {"n_buckets": n, "mc_subset": mc_subset, "open_subset": open_subset, "open_display": display,
                 "mc": mc_lines, "open": open_lines, "claims": [claim.to_dict()]}


@figure("fig23", cubes=MC_CUBES, need="any", kind="probabilities",
        variables=("outcome", "target", "output_tokens", "subject"),
        options={"n_buckets": 5, "subsets": list(FIG23_SUBSETS)},
        option_help={"n_buckets": N_BUCKETS_HELP,
                     "subsets": "the subsets shown, one row each (paper: five with visible trends)"},
        title="Model-written evals, multiple choice: KL bias, variance and incoherence vs output "
              "tokens for five subsets (Fig. 23)",
        caption="Per subset (rows): KL bias, KL variance (means over the bucket's questions, nats) "
                "and KL incoherence per output-token bucket, one line per model; target = the "
                "labelled aligned answer.")
def fig23(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    """Fig. 23. Returns ``(Figure, {"n_buckets", "subsets": {subset: [mc_bucket_lines]},
    "claims"})``."""
    import matplotlib.pyplot as plt

    n = int(settings.get("n_buckets", 5))
    subsets = list(settings.get("subsets", FIG23_SUBSETS))
    per = {s: mc_bucket_lines(cubes, s, n) for s in subsets}
    fig, axes = plt.subplots(len(subsets), 3, figsize=(10, 2.4 * len(subsets) + 0.6), squeeze=False)
    for i, s in enumerate(subsets):
        for j, key in enumerate(("bias", "variance", "incoherence")):
            ax = axes[i][j]
            for r in per[s]:
                ax.plot(r["x"], _series(r[key]), marker="o", label=r["label"])
            if not per[s]:
                ax.text(0.5, 0.5, "subset not in the cube", ha="center", va="center", transform=ax.transAxes,
                        color="0.4", fontsize=8)
            ax.set_title(f"{s}: KL {key}", fontsize=8)
            ax.grid(alpha=0.3)
            if i == len(subsets) - 1:
                ax.set_xlabel("mean output tokens (bucket)", fontsize=8)
    if any(per.values()):
        next(ax for row in axes for ax in row if ax.lines).legend(fontsize=6)
    fig.tight_layout()
    res = {f"{s}: {r['label']}": rises(r["x"], r["incoherence"]) for s, rows in per.items() for r in rows}
    claim = all_claim("fig23", "MWE multiple-choice incoherence grows with reasoning length, noisily, "
                      "in the five shown subsets",
                      "KL incoherence at the longest bucket > the shortest, every subset and line", res)
    return fig, {"n_buckets": n, "subsets": per, "claims": [claim.to_dict()]}


@figure("fig24", cubes=OPEN_CUBES, need="any", kind="embedding",
        variables=("outcome", "output_tokens", "subject"),
        options={"display_floor": 1e-4, "subsets": "all"},
        option_help={"display_floor": "embedding variances below this are drawn at it (the paper "
                                      "clips the display at 1e-4); every point is still fitted",
                     "subsets": "'all' (every subset in the cube, one panel each) or a list"},
        title="Model-written evals, open-ended: per-question embedding variance vs mean output "
              "tokens, log-log fit per model, every subset (Fig. 24)",
        caption="One point per question (variance of its answers' embeddings against its mean "
                "output tokens) and one log-log least-squares line per model and subset; display "
                "clipped at the floor, the fit uses every point with a positive variance.")
def fig24(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    """Fig. 24. Returns ``(Figure, {"display_floor", "subsets": {subset: [{...points, "fit":
    loglog_slope}]}, "claims"})``."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatter

    floor = float(settings.get("display_floor", 1e-4))
    want = settings.get("subsets", "all")
    names = list(dict.fromkeys(s for ds in cubes.values() for s in subsets_in(ds))) if want == "all" else list(want)
    per: dict[str, list[dict[str, Any]]] = {}
    for s in names:
        rows = []
        for row in open_points(cubes, s):
            row = _public(row)
            row["fit"] = loglog_slope(row["x"], row["variance"])
            rows.append(row)
        per[s] = rows
    ncol = min(4, max(1, len(names)))
    nrow = max(1, math.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.8 * nrow + 0.4), squeeze=False)
    for k, s in enumerate(names):
        ax = axes[k // ncol][k % ncol]
        for i, r in enumerate(per[s]):
            color = f"C{i % 10}"
            x, y = np.array(_series(r["x"])), np.array(_series(r["variance"]))
            ax.scatter(x, np.maximum(y, floor), s=8, color=color, label=r["label"])
            f = r["fit"]
            if f["slope"] is not None:
                xs = np.geomspace(np.nanmin(x[x > 0]), np.nanmax(x[x > 0]), 20)
                ax.plot(xs, np.maximum(f["prefactor"] * xs ** f["slope"], floor), color=color, lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):  # plain numbers; minor labels only on short ranges
            axis.set_major_formatter(LogFormatter(labelOnlyBase=False))
            axis.set_minor_formatter(LogFormatter(labelOnlyBase=False, minor_thresholds=(1, 0.5)))
        ax.tick_params(labelsize=7)
        ax.set_title(s, fontsize=7)
        ax.grid(alpha=0.3)
    for k in range(len(names), nrow * ncol):
        axes[k // ncol][k % ncol].axis("off")
    if names and per[names[0]]:
        axes[0][0].legend(fontsize=6)
    fig.supxlabel("mean output tokens (question)", fontsize=8)
    fig.supylabel(f"embedding variance (display clipped at {floor:g})", fontsize=8)
    fig.tight_layout()
    slopes = [r["fit"]["slope"] for rows in per.values() for r in rows if r["fit"]["slope"] is not None]
    share = (sum(s > 0 for s in slopes) / len(slopes)) if slopes else None
    claim = threshold_claim("fig24", "open-ended MWE embedding variance grows with reasoning length "
                            "for most subsets and models", "share of (subset, model) log-log slopes > 0 (agrees if > 0.5)",
                            share, lambda v: v > 0.5, enough=bool(slopes),
                            detail=f"{sum(s > 0 for s in slopes)}/{len(slopes)} fits positive")
    return fig, {"display_floor": floor, "subsets": per, "claims": [claim.to_dict()]}
