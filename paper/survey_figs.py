"""Survey figures (the paper's section 4, docs/science.md): Fig. 4b (all entities) and Fig. 27 (split by group).

Each entity is a point at (mean intelligence rank, mean incoherence rank) with error bars of
one standard error of the mean on both axes, read from the ``survey`` cube's ``mean`` and
``sem`` (``hotmess.plugins.survey.importer``: coherence ranks already inverted to incoherence,
rank 1 = least, N = most). A cube imported from a file labelled ILLUSTRATIVE says so in the
title.

Groups (Fig. 27, docs/science.md): *biological* (animals and well-known humans), *AI* (models) and
*organisation* (human institutions). Other spellings in a CSV are merged into these by the
``merge_groups`` option (e.g. ``human`` -> ``biological``). The trend (OPEN in the paper: any
trend line) is an ordinary least-squares line of mean incoherence rank on mean intelligence
rank (``numpy.polyfit``; :mod:`hotmess.core.metrics` has no linear fit): its slope is the
claim's measured value ("more intelligent entities are judged more incoherent": slope > 0).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from hotmess.paper.claims import all_claim, threshold_claim
from hotmess.paper.registry import figure

CUBE = "survey"
#: Panel order of Fig. 27 for the paper's groups; other groups follow alphabetically.
GROUP_ORDER = ("biological", "AI", "organisation")
#: Panel titles of the paper's groups.
GROUP_TITLES = {"biological": "biological (animals and humans)", "AI": "AI models",
                "organisation": "organisations"}
#: Default of the ``merge_groups`` option: other spellings of the paper's three groups.
MERGE_GROUPS = {"human": "biological", "humans": "biological", "animal": "biological",
                "animals": "biological", "ai": "AI", "AI model": "AI", "AI models": "AI",
                "organization": "organisation", "organizations": "organisation",
                "organisations": "organisation", "institution": "organisation",
                "institutions": "organisation"}
VARIABLES = ("mean", "sem", "n_raters", "group")
OPTIONS = {"merge_groups": MERGE_GROUPS, "trend_line": True}
OPTION_HELP = {"merge_groups": "CSV group name -> one of the paper's groups (biological, AI, "
                               "organisation); humans are biological (Fig. 27)",
               "trend_line": "draw the least-squares trend line (OPEN in the paper)"}


def _group_of(ds: xr.Dataset, settings: dict[str, Any] | None) -> dict[str, str]:
    merge = dict((settings or {}).get("merge_groups", MERGE_GROUPS) or {})
    return {str(e): merge.get(str(g), str(g)) for e, g in zip(ds["entity"].values, ds["group"].values,
                                                               strict=True)}


def trend(points: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Least-squares line ``incoherence_mean = slope * intelligence_mean + intercept`` over
    the entities (ranks); slope ``None`` with fewer than two distinct x."""
    x = np.array([p["intelligence_mean"] for p in points.values()], dtype=float)
    y = np.array([p["incoherence_mean"] for p in points.values()], dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if np.unique(x[ok]).size < 2:
        return {"slope": None, "intercept": None, "n": int(ok.sum())}
    slope, intercept = np.polyfit(x[ok], y[ok], 1)
    return {"slope": float(slope), "intercept": float(intercept), "n": int(ok.sum())}


def _groups(ds: xr.Dataset, settings: dict[str, Any] | None = None) -> list[str]:
    present = list(dict.fromkeys(_group_of(ds, settings).values()))
    known = [g for g in GROUP_ORDER if g in present]
    return known + sorted(g for g in present if g not in known)


def _points(ds: xr.Dataset, entities: list[str] | None = None,
            settings: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Plotted numbers per entity: group, mean and SEM of each measure, raters averaged."""
    out = {}
    groups = _group_of(ds, settings)
    for e in ds["entity"].values if entities is None else entities:
        row = ds.sel(entity=e)
        out[str(e)] = {
            "group": groups[str(e)],
            "intelligence_mean": float(row["mean"].sel(measure="intelligence")),
            "intelligence_sem": float(row["sem"].sel(measure="intelligence")),
            "incoherence_mean": float(row["mean"].sel(measure="incoherence")),
            "incoherence_sem": float(row["sem"].sel(measure="incoherence")),
            "n_intelligence_raters": int(row["n_raters"].sel(measure="intelligence")),
            "n_incoherence_raters": int(row["n_raters"].sel(measure="incoherence")),
        }
    return out


def _draw(ax, points: dict[str, dict[str, Any]], colors: dict[str, Any], n: int,
          line: dict[str, Any] | None = None) -> None:
    for name, p in points.items():
        ax.errorbar(p["intelligence_mean"], p["incoherence_mean"],
                    xerr=np.nan_to_num(p["intelligence_sem"]), yerr=np.nan_to_num(p["incoherence_sem"]),
                    fmt="o", ms=4, color=colors[p["group"]], ecolor=colors[p["group"]], elinewidth=0.8, capsize=2)
        ax.annotate(name, (p["intelligence_mean"], p["incoherence_mean"]), fontsize=6,
                    xytext=(3, 3), textcoords="offset points")
    if line and line["slope"] is not None:
        xs = np.array([0.5, n + 0.5])
        ax.plot(xs, line["slope"] * xs + line["intercept"], color="0.3", lw=0.8, ls="--",
                label=f"trend: slope {line['slope']:.2f}")
    ax.set_xlim(0.5, n + 0.5)
    ax.set_ylim(0.5, n + 0.5)
    ax.set_xlabel("mean intelligence rank (N = most intelligent)")
    ax.set_ylabel("mean incoherence rank (N = most incoherent)")


def _colors(groups: list[str]) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    return {g: cmap(i % 10) for i, g in enumerate(groups)}


def _suffix(ds: xr.Dataset) -> str:
    return " [ILLUSTRATIVE data, not the paper's]" if ds.attrs.get("illustrative") == "yes" else ""


_PAPER_04B = "entities judged more intelligent are judged more incoherent"


@figure("fig04b", cubes=(CUBE,), kind="survey", variables=VARIABLES, options=OPTIONS, option_help=OPTION_HELP,
        title="Survey: mean intelligence vs incoherence rank per entity (Fig. 4b)",
        caption="Each entity at its mean intelligence rank and mean incoherence rank (coherence "
                "ranks inverted), error bars one standard error of the mean over raters; colour = "
                "group.")
def fig04b(cubes: dict[str, xr.Dataset], settings: dict[str, Any] | None = None):
    """Fig. 4b. Returns ``(Figure, {"n_entities", "illustrative", "source_csv", "entities":
    {entity: {group, intelligence_mean, intelligence_sem, incoherence_mean,
    incoherence_sem, n_*_raters}}, "trend", "claims"})``."""
    import matplotlib.pyplot as plt

    settings = {**OPTIONS, **(settings or {})}
    ds = cubes[CUBE]
    n = int(ds.attrs.get("n_entities", ds.sizes["entity"]))
    groups = _groups(ds, settings)
    colors = _colors(groups)
    points = _points(ds, settings=settings)
    line = trend(points)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    _draw(ax, points, colors, n, line if settings.get("trend_line", True) else None)
    for g in groups:
        ax.plot([], [], "o", color=colors[g], label=GROUP_TITLES.get(g, g))
    ax.legend(fontsize=7, loc="best")
    ax.set_title("Survey: intelligence vs incoherence" + _suffix(ds), fontsize=9)
    fig.tight_layout()
    claim = threshold_claim("fig04b", _PAPER_04B, "least-squares slope of mean incoherence rank on mean "
                            "intelligence rank > 0", line["slope"], lambda v: v > 0,
                            detail=f"{line['n']} entities" + (" (ILLUSTRATIVE data)" if _suffix(ds) else ""))
    numbers = {"n_entities": n, "illustrative": ds.attrs.get("illustrative", "no"),
               "source_csv": ds.attrs.get("source_csv", ""), "entities": points, "trend": line,
               "claims": [claim.to_dict()]}
    return fig, numbers


@figure("fig27", cubes=(CUBE,), kind="survey", variables=VARIABLES, options=OPTIONS, option_help=OPTION_HELP,
        title="Survey split by group: biological, AI, organisations (Fig. 27)",
        caption="Fig. 4b in one panel per group: biological creatures (animals and well-known "
                "humans), AI models, human organisations; same axes and SEM bars.")
def fig27(cubes: dict[str, xr.Dataset], settings: dict[str, Any] | None = None):
    """Fig. 27: one panel per group. Returns ``(Figure, {"n_entities", "illustrative",
    "groups": {group: {entity: {...as fig04b...}}}, "trends": {group: trend}, "claims"})``."""
    import matplotlib.pyplot as plt

    settings = {**OPTIONS, **(settings or {})}
    ds = cubes[CUBE]
    n = int(ds.attrs.get("n_entities", ds.sizes["entity"]))
    groups = _groups(ds, settings)
    colors = _colors(groups)
    of = _group_of(ds, settings)
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4.2), squeeze=False)
    numbers: dict[str, Any] = {"n_entities": n, "illustrative": ds.attrs.get("illustrative", "no"),
                               "groups": {}, "trends": {}}
    for ax, g in zip(axes[0], groups, strict=True):
        ents = [str(e) for e in ds["entity"].values if of[str(e)] == g]
        points = _points(ds, ents, settings)
        line = trend(points)
        _draw(ax, points, colors, n, line if settings.get("trend_line", True) else None)
        if line["slope"] is not None and settings.get("trend_line", True):
            ax.legend(fontsize=6, loc="upper left")
        ax.set_title(GROUP_TITLES.get(g, g), fontsize=9)
        numbers["groups"][g] = points
        numbers["trends"][g] = line
    fig.suptitle("Survey by group" + _suffix(ds), fontsize=9)
    fig.tight_layout()
    res = {g: (None if t["slope"] is None else t["slope"] > 0) for g, t in numbers["trends"].items()}
    missing = [g for g in GROUP_ORDER if g not in groups]
    claim = all_claim("fig27", _PAPER_04B + ", within each group (biological, AI, organisations)",
                      "least-squares slope > 0 in every group", res,
                      detail=f"groups missing from the cube: {missing}" if missing else "")
    numbers["claims"] = [claim.to_dict()]
    return fig, numbers
