"""Table 1 (probability-format compliance) and Fig. 20 (answer-change rates by GPQA
difficulty label) (``docs/science.md``, "Figures: multiple choice (GPQA, MMLU) and Table 1").
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core import metrics
from hotmess.paper import mc_common as mc
from hotmess.paper.claims import all_claim, threshold_claim
from hotmess.paper.registry import figure

# ------------------------------------------------------------------------------ Table 1

TABLE1_MAX_RATE = 0.0182  # the paper's largest wrong-format rate (o4-mini medium)


def format_table(ds: xr.Dataset) -> list[dict[str, Any]]:
    """Wrong-format answers per (model, size, budget) that ran, from
    :func:`hotmess.core.metrics.format_error_counts` (``count``, ``total`` draws run, ``rate``)."""
    c = metrics.format_error_counts(ds["format_error"])
    rows = []
    for m in (str(v) for v in ds["model"].values):
        for s in mc.sizes_by_params(ds, m):
            for b in (str(v) for v in ds["budget"].values):
                cell = c.sel(model=m, size=s, budget=b)
                if int(cell["total"]) > 0:
                    rows.append({"model": m, "size": s, "budget": b, "count": int(cell["count"]),
                                 "total": int(cell["total"]), "rate": float(cell["rate"])})
    return rows


def table_csv(rows: list[dict[str, Any]]) -> str:
    """The table as CSV text (header ``model,size,budget,count,total,rate``)."""
    buf = io.StringIO()
    buf.write("model,size,budget,count,total,rate\n")
    for r in rows:
        buf.write(f"{r['model']},{r['size']},{r['budget']},{r['count']},{r['total']},{r['rate']:.6f}\n")
    return buf.getvalue()


@figure("table01", cubes=("gpqa_frontier",), title="Probability-format compliance, frontier GPQA (Table 1)",
        variables=("format_error",),
        caption="Answers that broke the <PROB> probability format, per model and budget: count, "
                "draws run, rate. The CSV text is in the JSON (table_csv).")
def build_table01(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    mc.check_cubes(cubes, ("format_error",), "table01")
    rows = format_table(cubes["gpqa_frontier"])
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 0.6 + 0.25 * max(1, len(rows))))
    ax.set_axis_off()
    cells = [[r["model"], r["size"], r["budget"], str(r["count"]), str(r["total"]), f"{100 * r['rate']:.2f} %"]
             for r in rows] or [["-"] * 6]
    ax.table(cellText=cells, colLabels=["model", "size", "budget", "wrong format", "draws", "rate"], loc="center")
    worst = max((r["rate"] for r in rows), default=None)
    claim = threshold_claim("table01", "frontier wrong-format rates are ≤ 1.82 % for every budget",
                            "largest wrong-format rate over (model, budget) ≤ 0.0182", worst,
                            lambda v: v <= TABLE1_MAX_RATE, enough=bool(rows), detail=f"{len(rows)} cells")
    mc.finish(fig)
    return fig, {"rows": rows, "table_csv": table_csv(rows), "claims": [claim.to_dict()]}


# ------------------------------------------------------------------------------ Fig. 20

FIG20_OPTS = {"line_budgets": {"sonnet4": "8k", "o3_mini": "high", "o4_mini": "high"},
              "format_errors": "drop", "majority_ties": "lowest", "large_share": 0.2}


def draw_answers(ds: xr.Dataset, format_errors: str = "drop") -> xr.DataArray:
    """The option each draw chose: argmax of its outcome vector (padding ignored), −1 where
    the draw did not run, and for format errors −1 (``"drop"``) or ``n_options``
    (``"as_answer"``: "no answer" is one more distinct answer).

    Raises
    ------
    mc.FigureInputError
        Unknown ``format_errors``.
    """
    if format_errors not in ("drop", "as_answer"):
        raise mc.FigureInputError(f"format_errors must be 'drop' or 'as_answer', got {format_errors!r}")
    p = ds["outcome"]
    pad = p.isnull().all("draw")
    valid = (p.notnull() | pad).all("option") & p.notnull().any("option")
    idx = p.fillna(-np.inf).argmax("option").where(valid, -1)
    if "format_error" in ds:
        fe = ds["format_error"].fillna(0).astype(bool) & valid
        idx = idx.where(~fe, -1 if format_errors == "drop" else p.sizes["option"])
    return idx.astype(int)


def _majority(a: np.ndarray, ties: str) -> int:
    vals, counts = np.unique(a, return_counts=True)
    best = vals[counts == counts.max()]
    if ties == "lowest":
        return int(best.min())
    raise mc.FigureInputError(f"majority_ties must be 'lowest', got {ties!r}")


def distinct_answer_flags(answers: np.ndarray, context: np.ndarray, ties: str = "lowest") -> dict[str, np.ndarray]:
    """Per-question flags of Fig. 20 from one cell's answers.

    Parameters
    ----------
    answers : numpy.ndarray of int, shape (question, draw)
        Chosen option per draw; negative = no valid answer (ignored).
    context : numpy.ndarray, shape (draw,)
        Few-shot context of each draw.
    ties : {"lowest"}
        Tie rule of a context's majority answer (OPEN): the lowest option index.

    Returns
    -------
    dict of numpy.ndarray
        ``seed`` (question, n_contexts) float: 1 where the context's ≥ 2 valid draws hold > 1
        distinct answer, 0 where they agree, NaN where fewer than 2 valid draws;
        ``context`` (question,): 1 where the per-context majorities (contexts with a valid
        draw, ≥ 2 of them) differ, NaN with fewer than 2; ``all`` (question,): 1 where the
        ≥ 2 valid draws hold > 1 distinct answer.
    """
    ctxs = list(dict.fromkeys(np.asarray(context).tolist()))
    nq = answers.shape[0]
    seed = np.full((nq, len(ctxs)), np.nan)
    ctx_flag = np.full(nq, np.nan)
    all_flag = np.full(nq, np.nan)
    for q in range(nq):
        majors = []
        for k, c in enumerate(ctxs):
            a = answers[q, np.asarray(context) == c]
            a = a[a >= 0]
            if a.size >= 2:
                seed[q, k] = float(np.unique(a).size > 1)
            if a.size >= 1:
                majors.append(_majority(a, ties))
        if len(majors) >= 2:
            ctx_flag[q] = float(len(set(majors)) > 1)
        a = answers[q][answers[q] >= 0]
        if a.size >= 2:
            all_flag[q] = float(np.unique(a).size > 1)
    return {"seed": seed, "context": ctx_flag, "all": all_flag}


def distinct_shares(flags: dict[str, np.ndarray], levels: list[str], lab: np.ndarray) -> dict[str, dict[str, float]]:
    """Share (in %) of questions (``seed``: of question × context cells) flagged, per level
    and ``"all levels"``; NaN where nothing is countable."""
    out = {}
    for lv in [*levels, "all levels"]:
        sel = np.ones(lab.shape, bool) if lv == "all levels" else lab == lv
        row = {}
        for k in ("seed", "context", "all"):
            v = flags[k][sel].ravel()
            v = v[np.isfinite(v)]
            row[k] = float(100 * v.mean()) if v.size else float("nan")
            row[f"n_{k}"] = int(v.size)
        out[lv] = row
    return out


@figure("fig20", cubes=("gpqa_frontier_letter",), title="Answer-change rates by GPQA difficulty (Fig. 20)",
        options=FIG20_OPTS, variables=("outcome", "target", "context", "format_error"),
        caption="Letter format, contexts × seeds: % of questions with more than one distinct answer "
                "(1) among the seeds of one context, (2) across the contexts' majority answers, "
                "(3) over all draws, per writer difficulty label.")
def build_fig20(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG20_OPTS, settings)
    mc.check_cubes(cubes, ("outcome", "target", "context", "format_error"), "fig20")
    ds = cubes["gpqa_frontier_letter"]
    dec = mc.decompose(ds, "kl")
    ans = draw_answers(ds, opts["format_errors"])
    levels, lab = mc.difficulty_levels(ds)
    panels = []
    for m, s, b in mc.cells(ds, dec, opts["line_budgets"]):
        a = ans.sel(model=m, size=s, budget=b).transpose("question", "draw").values
        flags = distinct_answer_flags(a, ds["context"].values, opts["majority_ties"])
        panels.append({"model": m, "size": s, "budget": b,
                       "shares": distinct_shares(flags, levels, lab)})
    fig, axes = mc.new_figure(1, max(1, len(panels)), w=4.5)
    for ax, p in zip(axes[0], panels, strict=False):
        x = np.arange(len(levels))
        for k, (key, name) in enumerate((("seed", "seed (within a context)"), ("context", "context majority"),
                                         ("all", "all draws"))):
            ax.bar(x + (k - 1) * 0.27, [p["shares"][lv][key] for lv in levels], 0.27, label=name)
        ax.set_xticks(x, levels, rotation=20, fontsize=6)
        ax.set(ylabel="% of questions with > 1 distinct answer", title=mc.label(p["model"], p["size"], p["budget"]),
               ylim=(0, 100))
        ax.legend(fontsize=6)
    if not panels:
        mc.empty_note(axes[0, 0], "no cell ran")
    thr = float(opts["large_share"])
    res = {mc.label(p["model"], p["size"], p["budget"]):
           (None if not np.isfinite(p["shares"]["all levels"]["all"]) else p["shares"]["all levels"]["all"] > 100 * thr)
           for p in panels}
    claims = [all_claim("fig20", "a large share of GPQA questions get more than one distinct answer",
                        f"share of questions with > 1 distinct answer over all draws > {100 * thr:.0f} %", res)]
    mc.finish(fig)
    return fig, {"options": opts, "levels": levels, "panels": panels, "claims": [c.to_dict() for c in claims]}
