"""Multiple-choice figures against reasoning length: Figs. 2a, 8, 9, 10, 18, 22
(``docs/science.md``, "Figures: multiple choice (GPQA, MMLU) and Table 1").

Lengths are per-question means over the draws of the option ``length`` (default
``output_tokens``: the paper's "output tokens of the response"); buckets are equal-size
groups of questions by that mean (:func:`hotmess.core.metrics.length_buckets`), formed per
(model, size, budget) line from the questions with a finite length and decomposition.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core import metrics
from hotmess.paper import mc_common as mc
from hotmess.paper.claims import all_claim, threshold_claim
from hotmess.paper.registry import figure

#: Which budget each frontier line uses where a figure draws one line per model (OPEN; Fig.
#: 10's legend: "Claude Sonnet 4 (8.0k)", "o3 Mini (High)", "o4 Mini (High)"). Models not
#: named here get one line per budget.
LINE_BUDGETS = {"sonnet4": "8k", "o3_mini": "high", "o4_mini": "high"}
BASE = {"n_buckets": 5, "length": "output_tokens", "line_budgets": LINE_BUDGETS}
MC_VARS = ("outcome", "target")


def bucket_line(ds: xr.Dataset, model: str, size: str, budget: str, families: tuple[str, ...],
                length_var: str, n_buckets: int) -> dict[str, Any]:
    """Per-bucket numbers of one (model, size, budget) line.

    Returns
    -------
    dict
        ``x`` (mean length per bucket, tokens), ``n_questions``, ``accuracy`` (mean
        per-question accuracy, :func:`hotmess.core.metrics.accuracy`), and per family ``f``:
        ``f_incoherence`` (Σ var / Σ err), ``f_bias``, ``f_variance``, ``f_error`` (means
        over the bucket's questions). Buckets: ``min(n_buckets, usable questions)``.
    """
    cell = ds.sel(model=model, size=size, budget=budget)
    length = mc.length_of(cell, length_var)
    decs = {f: mc.decompose(cell, f) for f in families}
    first = decs[families[0]]
    usable = int((first["variance"].notnull() & first["error"].notnull()
                  & mc.question_length(length).notnull()).sum())
    k = max(1, min(int(n_buckets), usable))
    out: dict[str, Any] = {"model": model, "size": size, "budget": budget, "n_buckets": k}
    for f, dec in decs.items():
        b = mc.by_bucket(dec, length, k)
        if f == families[0]:
            out["x"] = mc.floats(b["length"])
            out["n_questions"] = [int(v) for v in b["n_questions"].values]
            ids = metrics.length_buckets(mc.question_length(length).where(
                dec["variance"].notnull() & dec["error"].notnull()), k)
            acc = metrics.accuracy(cell["outcome"], cell["target"])
            out["accuracy"] = mc.floats(mc.group_mean(acc, ids, k))
        if f != "zero_one":
            out[f"{f}_incoherence"] = mc.floats(b["incoherence"])
        for v in ("bias", "variance", "error"):
            out[f"{f}_{v}"] = mc.floats(b[v])
    return out


def length_lines(ds: xr.Dataset, families: tuple[str, ...], opts: dict[str, Any],
                 budgets: dict | None = None) -> list[dict[str, Any]]:
    """:func:`bucket_line` for every cell that ran (``budgets``: see
    :func:`hotmess.paper.mc_common.cells`)."""
    dec = mc.decompose(ds, families[0])
    return [bucket_line(ds, m, s, b, families, opts["length"], opts["n_buckets"])
            for m, s, b in mc.cells(ds, dec, budgets)]


# ------------------------------------------------------------------------------ Fig. 2a

FIG02_OPTS = {**BASE, "metric_family": "kl"}


@figure("fig02a", cubes=("gpqa_frontier", "gpqa_qwen3", "mmlu_qwen3", "gpqa_cpu", "cpu_demo"),
        need="any", title="Incoherence vs reasoning length, GPQA (Fig. 2a)", options=FIG02_OPTS,
        variables=(*MC_VARS, "output_tokens"),
        caption="KL incoherence (Σ variance / Σ error) per equal-size bucket of questions by "
                "mean output length; one line per model (frontier at one budget) and Qwen3 size.")
def build_fig02a(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG02_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig02a")
    fam = opts["metric_family"]
    fig, axes = mc.new_figure(1, len(cubes))
    lines, slopes = [], {}
    for ax, (name, ds) in zip(axes[0], cubes.items(), strict=True):
        for line in length_lines(ds, (fam,), opts, opts["line_budgets"]):
            line["cube"] = name
            line["slope"] = mc.trend_slope(line["x"], line[f"{fam}_incoherence"])
            lab = mc.label(line["model"], line["size"], line["budget"])
            slopes[f"{name}: {lab}"] = line["slope"]
            ax.plot(line["x"], line[f"{fam}_incoherence"], marker="o", label=lab)
            lines.append(line)
        ax.set_xscale("log")
        ax.set(xlabel=f"mean {opts['length'].replace('_', ' ')} (bucket)",
               ylabel=f"{mc.FAMILY_LABEL[fam]} incoherence", title=name, ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    claims = [all_claim("fig02a", "incoherence rises with reasoning length for every model",
                        f"slope of {fam.upper()} incoherence vs log length > 0",
                        {k: (None if not np.isfinite(v) else v > 0) for k, v in slopes.items()})]
    # Qwen3 sizes: nearly identical slopes (lines of a model with several sizes)
    groups: dict[tuple, list[float]] = {}  # the sizes of one model at one budget in one cube
    for ln in lines:
        if ln["model"] not in opts["line_budgets"] and np.isfinite(ln["slope"]):
            groups.setdefault((ln["cube"], ln["model"], ln["budget"]), []).append(ln["slope"])
    spreads = [max(v) - min(v) for v in groups.values() if len(v) > 1]
    claims.append(threshold_claim(
        "fig02a", "Qwen3 sizes share nearly identical incoherence slopes vs length",
        "largest range of the sizes' slopes (per e-fold of length) within one model < 0.05",
        max(spreads) if spreads else None, lambda v: v < 0.05, enough=bool(spreads),
        detail=f"{len(spreads)} multi-size models"))
    mc.finish(fig)
    return fig, {"options": opts, "lines": lines, "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Fig. 8

FIG08_OPTS = {**BASE, "prob_accuracy": "mean_probability"}
FORMATS = {"gpqa_frontier_letter": "letter", "gpqa_frontier": "probabilities"}


def budget_accuracy(ds: xr.Dataset, fmt: str, prob_accuracy: str) -> list[dict[str, Any]]:
    """Accuracy per budget for every (model, size) of a cube (Fig. 8a).

    Letter format: mean over questions of :func:`hotmess.core.metrics.accuracy`; probability
    format with ``prob_accuracy="mean_probability"``: mean probability on the correct option
    (:func:`hotmess.paper.mc_common.correct_probability`), else argmax accuracy.
    """
    dec = mc.decompose(ds, "kl")
    if fmt == "probabilities" and prob_accuracy == "mean_probability":
        acc = mc.correct_probability(ds["outcome"], ds["target"])
    else:
        acc = metrics.accuracy(ds["outcome"], ds["target"])
    acc = acc.mean("question", skipna=True)
    out = []
    for model in (str(m) for m in ds["model"].values):
        for size in mc.sizes_by_params(ds, model):
            bud = mc.run_budgets(ds, dec, model, size)
            if bud:
                out.append({"model": model, "size": size, "budgets": bud,
                            "accuracy": mc.floats(acc.sel(model=model, size=size, budget=bud))})
    return out


@figure("fig08", cubes=("gpqa_frontier_letter", "gpqa_frontier"), need="any",
        title="Frontier accuracy and error overview, GPQA (Fig. 8)", options=FIG08_OPTS,
        variables=(*MC_VARS, "output_tokens"),
        caption="Accuracy vs budget (letter and probability format), accuracy per length bucket, "
                "and total KL / Brier / 0-1 error per length bucket.")
def build_fig08(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG08_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig08")
    fig, axes = mc.new_figure(len(cubes), 5, w=3.4, h=3.0)
    panels: dict[str, Any] = {}
    up, falls, rises = {}, {}, {}
    for row, (name, ds) in zip(axes, cubes.items(), strict=True):
        fmt = FORMATS.get(name, "letter")
        acc = budget_accuracy(ds, fmt, opts["prob_accuracy"])
        lines = length_lines(ds, ("kl", "brier", "zero_one"), opts, opts["line_budgets"])
        panels[name] = {"format": fmt, "accuracy_vs_budget": acc, "lines": lines}
        for a in acc:
            lab = mc.label(a["model"], a["size"], "")
            row[0].plot(range(len(a["budgets"])), a["accuracy"], marker="o", label=lab)
            up[f"{name}: {lab}"] = (a["accuracy"][-1] > a["accuracy"][0]) if len(a["budgets"]) > 1 else None
        longest = max((a["budgets"] for a in acc), key=len, default=[])
        row[0].set_xticks(range(len(longest)), longest)
        row[0].set(title=f"{name} ({fmt})", xlabel="budget (cube order)", ylabel="accuracy")
        for ln in lines:
            lab = mc.label(ln["model"], ln["size"], ln["budget"])
            row[1].plot(ln["x"], ln["accuracy"], marker="o", label=lab)
            s = mc.trend_slope(ln["x"], ln["accuracy"])
            falls[f"{name}: {lab}"] = None if not np.isfinite(s) else s < 0
            for j, f in enumerate(("kl", "brier", "zero_one"), start=2):
                row[j].plot(ln["x"], ln[f"{f}_error"], marker="o", label=lab)
            s = mc.trend_slope(ln["x"], ln["kl_error"])
            rises[f"{name}: {lab}"] = None if not np.isfinite(s) else s > 0
        row[1].set(title="accuracy per length bucket", xlabel="mean length", xscale="log")
        for j, f in enumerate(("kl", "brier", "zero_one"), start=2):
            row[j].set(title=f"total {mc.FAMILY_LABEL[f]} error", xlabel="mean length", xscale="log")
        for ax in row:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=5)
    claims = [all_claim("fig08", "accuracy rises with budget in both formats",
                        "accuracy at the largest budget > at the smallest, per model", up)]
    both = [n for n in FORMATS if n in panels]
    if len(both) == 2:
        mean = {n: {a["model"]: float(np.nanmean(a["accuracy"])) for a in panels[n]["accuracy_vs_budget"]}
                for n in both}
        lower = {m: mean["gpqa_frontier"][m] < mean["gpqa_frontier_letter"][m]
                 for m in mean["gpqa_frontier"] if m in mean["gpqa_frontier_letter"]}
    else:
        lower = {}
    claims.append(all_claim("fig08", "the probability format scores lower than the letter format",
                            "mean accuracy over budgets: probability < letter, per model", lower))
    claims.append(all_claim("fig08", "accuracy falls with length",
                            "slope of bucket accuracy vs log length < 0", falls))
    claims.append(all_claim("fig08", "total error rises with length",
                            "slope of bucket KL error vs log length > 0", rises))
    mc.finish(fig)
    return fig, {"options": opts, "panels": panels, "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Fig. 9

FIG09_CUBES = {"gpqa_qwen3_base": "base", "gpqa_qwen3_instruct": "instruct", "gpqa_qwen3": "thinking"}


def accuracy_vs_size(ds: xr.Dataset) -> list[dict[str, Any]]:
    """Mean accuracy (:func:`hotmess.core.metrics.accuracy`) per size, one entry per (model,
    budget) with ``params`` and ``accuracy`` lists over the sizes that ran."""
    dec = mc.decompose(ds, "kl")
    acc = metrics.accuracy(ds["outcome"], ds["target"]).mean("question", skipna=True)
    ok = mc.ran(dec)
    out = []
    for model in (str(m) for m in ds["model"].values):
        for budget in (str(b) for b in ds["budget"].values):
            sizes = [s for s in mc.sizes_by_params(ds, model)
                     if bool(ok.sel(model=model, size=s, budget=budget))]
            if sizes:
                out.append({"model": model, "budget": budget, "sizes": sizes,
                            "params": [mc.params_of(ds, model, s) for s in sizes],
                            "accuracy": mc.floats(acc.sel(model=model, budget=budget, size=sizes))})
    return out


@figure("fig09", cubes=tuple(FIG09_CUBES), need="any",
        title="Qwen3 base / instruct / thinking accuracy (Fig. 9)", options=dict(BASE),
        variables=(*MC_VARS, "output_tokens"),
        caption="Left: accuracy vs size for base and instruct (option log-prob scoring) and "
                "thinking models. Right: thinking accuracy per length bucket.")
def build_fig09(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(BASE, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig09")
    fig, axes = mc.new_figure(1, 2)
    left, right, slope = [], [], {}
    for name, ds in cubes.items():
        variant = FIG09_CUBES.get(name, name)
        for e in accuracy_vs_size(ds):
            e.update(cube=name, variant=variant, slope=mc.trend_slope(e["params"], e["accuracy"]))
            left.append(e)
            slope.setdefault(variant, e["slope"])
            axes[0, 0].plot(e["params"], e["accuracy"], marker="o", label=f"{variant}: {e['model']}")
    if "gpqa_qwen3" in cubes:
        for ln in length_lines(cubes["gpqa_qwen3"], ("kl",), opts):
            right.append(ln)
            axes[0, 1].plot(ln["x"], ln["accuracy"], marker="o", label=mc.label(ln["model"], ln["size"], ln["budget"]))
    else:
        mc.empty_note(axes[0, 1], "no gpqa_qwen3 cube")
    axes[0, 0].set(xscale="log", xlabel="parameters", ylabel="accuracy", title="accuracy vs size")
    axes[0, 1].set(xscale="log", xlabel="mean length (bucket)", ylabel="accuracy", title="thinking: accuracy vs length")
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    th = slope.get("thinking", float("nan"))
    res = {f"thinking > {v}": (None if not (np.isfinite(th) and np.isfinite(s)) else th > s)
           for v, s in slope.items() if v != "thinking"}
    falls = {mc.label(ln["model"], ln["size"], ln["budget"]): (lambda s: None if not np.isfinite(s) else s < 0)(
        mc.trend_slope(ln["x"], ln["accuracy"])) for ln in right}
    claims = [all_claim("fig09", "thinking models' accuracy grows faster with size than base or instruct",
                        "slope of accuracy vs log size: thinking > base, thinking > instruct", res),
              all_claim("fig09", "accuracy falls with length (thinking)",
                        "slope of bucket accuracy vs log length < 0", falls)]
    mc.finish(fig)
    return fig, {"options": opts, "accuracy_vs_size": left, "accuracy_vs_length": right,
                 "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Fig. 10


@figure("fig10", cubes=("gpqa_frontier",), need="all",
        title="All decompositions vs length, frontier GPQA (Fig. 10)", options=dict(BASE),
        variables=(*MC_VARS, "output_tokens"),
        caption="Absolute bias and variance (KL, Brier, 0/1) per length bucket, log-log; Brier "
                "and KL coherence (1 − incoherence) and incoherence with power-law fits.")
def build_fig10(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(BASE, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig10")
    ds = cubes["gpqa_frontier"]
    lines = length_lines(ds, ("kl", "brier", "zero_one"), opts, opts["line_budgets"])
    fig, axes = mc.new_figure(2, 4, w=3.4, h=3.0)
    faster, rises = {}, {}
    for ln in lines:
        lab = mc.label(ln["model"], ln["size"], ln["budget"])
        ln["fits"] = {}
        for j, f in enumerate(("kl", "brier", "zero_one")):
            for v, ls in (("bias", "-"), ("variance", "--")):
                ln["fits"][f"{f}_{v}"] = mc.positive_power_fit(ln["x"], ln[f"{f}_{v}"])
                axes[0, j].plot(ln["x"], ln[f"{f}_{v}"], ls, marker="o", label=f"{lab} {v}")
        for j, f in enumerate(("brier", "kl")):
            inc = np.asarray(ln[f"{f}_incoherence"], dtype=float)
            ln[f"{f}_coherence"] = mc.floats(1 - inc)
            for k, (what, y) in enumerate((("coherence", 1 - inc), ("incoherence", inc))):
                fit = mc.positive_power_fit(ln["x"], y)
                ln["fits"][f"{f}_{what}"] = fit
                ax = axes[1, 2 * j + k]
                ax.plot(ln["x"], y, marker="o",
                        label=f"{lab} (α = {fit['slope']:.2f}, R² = {fit['r2']:.2f})")
                ax.set(title=f"{mc.FAMILY_LABEL[f]} {what}", xscale="log", yscale="log", xlabel="mean length")
        kb, kv = ln["fits"]["kl_bias"]["slope"], ln["fits"]["kl_variance"]["slope"]
        faster[lab] = None if not (np.isfinite(kb) and np.isfinite(kv)) else kv > kb
        for f in ("kl", "brier"):
            s = mc.trend_slope(ln["x"], ln[f"{f}_incoherence"])
            rises[f"{lab} {f}"] = None if not np.isfinite(s) else s > 0
    for j, f in enumerate(("kl", "brier", "zero_one")):
        axes[0, j].set(title=f"{mc.FAMILY_LABEL[f]} bias (—) and variance (--)", xscale="log", yscale="log",
                       xlabel="mean length")
    mc.empty_note(axes[0, 3], "fits: α = signed log-log slope") if lines else mc.empty_note(axes[0, 3], "no cell ran")
    axes[0, 3].set_axis_off()
    for ax in axes.ravel():
        if ax.lines:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=5)
    claims = [all_claim("fig10", "variance rises with length faster than bias",
                        "log-log slope of KL variance > of KL bias vs length", faster),
              all_claim("fig10", "Brier and KL incoherence rise with length",
                        "slope of incoherence vs log length > 0 (KL and Brier)", rises)]
    mc.finish(fig)
    return fig, {"options": opts, "lines": lines, "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Fig. 18

FIG18_OPTS = {"n_buckets": 5, "wait_pattern": "Wait", "wait_case_sensitive": True,
              "wait_match": "word", "wait_average": "ratio_of_sums", "metric_family": "kl"}


def wait_counts(text: Any, pattern: str = "Wait", *, case_sensitive: bool = True,
                match: str = "word") -> np.ndarray:
    """Number of occurrences of ``pattern`` in each string of ``text`` (Fig. 18's rule).

    Parameters
    ----------
    text : array-like of str
        Reasoning texts (any shape); non-strings (missing) give NaN.
    pattern : str
    case_sensitive : bool
    match : {"word", "substring"}
        ``"word"``: whole words only (``\\bWait\\b``: "Wait," counts, "Waiting" does not);
        ``"substring"``: every occurrence.

    Returns
    -------
    numpy.ndarray of float
        Same shape as ``text``.

    Raises
    ------
    ValueError
        Unknown ``match``.
    """
    if match not in ("word", "substring"):
        raise ValueError(f"wait_match must be 'word' or 'substring', got {match!r}")
    rx = re.compile((r"\b%s\b" if match == "word" else "%s") % re.escape(pattern),
                    0 if case_sensitive else re.IGNORECASE)
    arr = np.asarray(text, dtype=object)
    out = np.full(arr.shape, np.nan)
    for idx, s in np.ndenumerate(arr):
        if isinstance(s, str):
            out[idx] = len(rx.findall(s))
    return out


def wait_density(ds: xr.Dataset, opts: dict[str, Any]) -> xr.DataArray:
    """Per-question wait density: "Wait" count ÷ reasoning tokens.

    ``wait_average="ratio_of_sums"``: Σ_draws count / Σ_draws reasoning tokens;
    ``"mean_ratio"``: mean over draws of count / tokens (draws with 0 tokens skipped).
    Dims (model, size, budget, question).
    """
    counts = xr.DataArray(wait_counts(ds["reasoning_text"].values, opts["wait_pattern"],
                                      case_sensitive=bool(opts["wait_case_sensitive"]),
                                      match=opts["wait_match"]),
                          dims=ds["reasoning_text"].dims, coords=ds["reasoning_text"].coords)
    tokens = ds["reasoning_tokens"].astype(float)
    both = counts.notnull() & tokens.notnull()
    if opts["wait_average"] == "ratio_of_sums":
        den = tokens.where(both).sum("draw", min_count=1)
        return counts.where(both).sum("draw", min_count=1) / den.where(den > 0)
    if opts["wait_average"] == "mean_ratio":
        return (counts / tokens.where(tokens > 0)).mean("draw", skipna=True)
    raise mc.FigureInputError(f"wait_average must be 'ratio_of_sums' or 'mean_ratio', got {opts['wait_average']!r}")


@figure("fig18", cubes=("gpqa_qwen3", "mmlu_qwen3"), need="any",
        title="Incoherence vs 'Wait' density, Qwen3 (Fig. 18)", options=FIG18_OPTS,
        variables=(*MC_VARS, "reasoning_text", "reasoning_tokens"),
        caption="Questions bucketed by the density of 'Wait' in the reasoning (count ÷ "
                "reasoning tokens); KL incoherence per bucket, one line per size.")
def build_fig18(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG18_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, "reasoning_text", "reasoning_tokens"), "fig18")
    fig, axes = mc.new_figure(1, len(cubes))
    panels, claims = {}, []
    for ax, (name, ds) in zip(axes[0], cubes.items(), strict=True):
        dec = mc.decompose(ds, opts["metric_family"])
        dens = wait_density(ds, opts)
        lines = []
        for m, s, b in mc.cells(ds, dec):
            d = dec.sel(model=m, size=s, budget=b)
            x = dens.sel(model=m, size=s, budget=b)
            usable = int((d["variance"].notnull() & d["error"].notnull() & x.notnull()).sum())
            k = max(1, min(int(opts["n_buckets"]), usable))
            bk = mc.by_bucket(d, x, k)
            ln = {"model": m, "size": s, "budget": b, "x": mc.floats(bk["length"]),
                  "incoherence": mc.floats(bk["incoherence"]),
                  "n_questions": [int(v) for v in bk["n_questions"].values]}
            ln["slope"] = mc.trend_slope(ln["x"], ln["incoherence"])
            lines.append(ln)
            ax.plot(ln["x"], ln["incoherence"], marker="o", label=f"{mc.label(m, s, b)} (slope {ln['slope']:.2f})")
        ax.set(title=name, xlabel="'Wait' per reasoning token (bucket mean)", ylabel="incoherence", ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        panels[name] = lines
        res = {mc.label(ln["model"], ln["size"], ln["budget"]): (None if not np.isfinite(ln["slope"]) else ln["slope"] > 0)
               for ln in lines}
        if name.startswith("mmlu"):
            claims.append(all_claim("fig18", "MMLU: incoherence rises with wait density for every size",
                                    f"{name}: slope of incoherence vs log wait density > 0", res))
        else:
            fin = [abs(ln["slope"]) for ln in lines if np.isfinite(ln["slope"])]
            claims.append(threshold_claim("fig18", "GPQA: no clear link between wait density and incoherence",
                                          f"{name}: max |slope of incoherence vs log wait density| < 0.05",
                                          max(fin) if fin else None, lambda v: v < 0.05,
                                          detail=f"{len(fin)} lines"))
    mc.finish(fig)
    return fig, {"options": opts, "panels": panels, "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Fig. 22

FIG22_OPTS = {"length": "output_tokens", "length_reference": "o3_mini/default/medium"}


def log_length_correlation(x: Any, y: Any) -> float:
    """Pearson correlation of log lengths over the questions where both are finite and > 0
    (NaN with fewer than 3 such questions or a constant side)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 3 or np.ptp(np.log(x[ok])) == 0 or np.ptp(np.log(y[ok])) == 0:
        return float("nan")
    return float(np.corrcoef(np.log(x[ok]), np.log(y[ok]))[0, 1])


@figure("fig22", cubes=("gpqa_frontier", "gpqa_qwen3"), need="any",
        title="Length per GPQA difficulty label; cross-model length correlation (Fig. 22)",
        options=FIG22_OPTS, variables=(*MC_VARS, "output_tokens", "difficulty"),
        caption="(a) Mean output length per writer difficulty label for every run; (b) "
                "per-question mean length of a reference run vs the others (log-log).")
def build_fig22(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG22_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig22")
    runs = []  # (key, levels, labels, per-question length over the union of questions)
    for name, ds in cubes.items():
        dec = mc.decompose(ds, "kl")
        qlen = mc.question_length(mc.length_of(ds, opts["length"]))
        levels, lab = mc.difficulty_levels(ds)
        for m, s, b in mc.cells(ds, dec):
            q = qlen.sel(model=m, size=s, budget=b)
            per = {lv: float(q[lab == lv].mean(skipna=True)) for lv in levels}
            runs.append({"cube": name, "model": m, "size": s, "budget": b, "key": f"{m}/{s}/{b}",
                         "mean_length_by_label": per,
                         "question_length": dict(zip((str(v) for v in q["question"].values),
                                                     mc.floats(q), strict=True))})
    fig, axes = mc.new_figure(1, 2)
    labels = [lv for lv in (*mc.GPQA_LEVELS, "unlabelled", "all")
              if any(lv in r["mean_length_by_label"] for r in runs)]
    width = 0.8 / max(1, len(runs))
    for i, r in enumerate(runs):
        axes[0, 0].bar(np.arange(len(labels)) + i * width,
                       [r["mean_length_by_label"].get(lv, np.nan) for lv in labels], width, label=r["key"])
    axes[0, 0].set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=20, fontsize=6)
    axes[0, 0].set(ylabel=f"mean {opts['length']}", title="length per difficulty label")
    ref = next((r for r in runs if r["key"] == opts["length_reference"]), runs[0] if runs else None)
    corr, alike = {}, {}
    if ref is not None:
        for r in runs:
            if r is ref:
                continue
            common = [q for q in ref["question_length"] if q in r["question_length"]]
            xs = [ref["question_length"][q] for q in common]
            ys = [r["question_length"][q] for q in common]
            corr[r["key"]] = log_length_correlation(xs, ys)
            axes[0, 1].scatter(xs, ys, s=6, label=f"{r['key']} (r = {corr[r['key']]:.2f})")
    axes[0, 1].set(xscale="log", yscale="log", xlabel=f"reference {ref['key'] if ref else '-'}",
                   ylabel="other run", title="per-question mean length")
    for r in runs:
        hard = [r["mean_length_by_label"].get(lv, np.nan) for lv in mc.GPQA_LEVELS[1:]]
        hard = [h for h in hard if np.isfinite(h) and h > 0]
        alike[r["key"]] = (max(hard) / min(hard) < 1.25) if len(hard) >= 2 else None
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=5)
    claims = [all_claim("fig22", "GPQA difficulty labels do not predict length (hardest three alike)",
                        "max/min mean length over the three hardest labels < 1.25, per run", alike),
              all_claim("fig22", "lengths correlate across models and families",
                        "Pearson r of log per-question length vs the reference > 0",
                        {k: (None if not np.isfinite(v) else v > 0) for k, v in corr.items()})]
    mc.finish(fig)
    return fig, {"options": opts, "reference": ref["key"] if ref else None, "runs": runs,
                 "correlation": corr, "claims": [c.to_dict() for c in claims]}
