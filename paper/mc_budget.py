"""Budgets, natural overthinking, ensembling and sample efficiency on GPQA: Figs. 3a, 7a,
7b, 11, 17a, 21 (``docs/science.md``, "Figures: multiple choice (GPQA, MMLU) and Table 1").

- Natural overthinking (Figs. 3a, 17a right): :func:`hotmess.core.metrics.overthinking`, each
  question's draws split at that question's median length (its default rule: the paper's
  short < median, long ≥ median once the metrics package has it).
- Budget levels (Figs. 7a, 17a left): Sonnet 4's five budgets map to Low/Medium/High through
  the option ``budget_levels`` (OPEN; default 1k/4k/16k); models not in it keep every budget.
- Ensembling (Figs. 7b, 11): :func:`hotmess.core.metrics.ensemble` (``n_ensembles``
  disjoint members of E draws each), then the Brier / KL decomposition across the members.
- Sample efficiency (Fig. 21): :func:`hotmess.core.metrics.bootstrap_draws`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core import metrics
from hotmess.paper import mc_common as mc
from hotmess.paper.claims import all_claim, threshold_claim
from hotmess.paper.registry import figure

MC_VARS = ("outcome", "target")
BUDGET_LEVELS = {"sonnet4": {"Low": "1k", "Medium": "4k", "High": "16k"}}


def halves(ds: xr.Dataset, length_var: str) -> list[dict[str, Any]]:
    """Short / long half numbers of every cell that ran (Fig. 3a).

    Returns
    -------
    list of dict
        ``model, size, budget``, ``accuracy`` and ``incoherence`` (KL) and ``length`` as
        ``{"short": ., "long": .}``, from :func:`hotmess.core.metrics.overthinking`.
    """
    dec = mc.decompose(ds, "kl")
    ot = metrics.overthinking(ds["outcome"], ds["target"], mc.length_of(ds, length_var))
    out = []
    for m, s, b in mc.cells(ds, dec):
        c = ot.sel(model=m, size=s, budget=b)
        out.append({"model": m, "size": s, "budget": b,
                    **{v: {h: float(c[v].sel(half=h)) for h in ("short", "long")}
                       for v in ("accuracy", "incoherence", "length")}})
    return out


def _bars(ax, rows: list[dict[str, Any]], key: str, ylabel: str) -> None:
    x = np.arange(len(rows))
    for k, (h, col) in enumerate((("short", "C0"), ("long", "C3"))):
        ax.bar(x + (k - 0.5) * 0.4, [r[key][h] for r in rows], 0.4, color=col,
               label="below median" if h == "short" else "at/above median")
    ax.set_xticks(x, [mc.label(r["model"], r["size"], r["budget"]) for r in rows], rotation=30, fontsize=6, ha="right")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=6)


# ------------------------------------------------------------------------------ Fig. 3a

FIG03_OPTS = {"length": "output_tokens"}


@figure("fig03a", cubes=("gpqa_frontier", "gpqa_qwen3"), need="any",
        title="Natural overthinking, GPQA (Fig. 3a)", options=FIG03_OPTS,
        variables=(*MC_VARS, "output_tokens"),
        caption="Each question's draws split at its median output length; KL incoherence and "
                "accuracy of the pooled short and long halves, per model and budget.")
def build_fig03a(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG03_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig03a")
    fig, axes = mc.new_figure(2, len(cubes))
    panels, res, dacc = {}, {}, {}
    for j, (name, ds) in enumerate(cubes.items()):
        rows = halves(ds, opts["length"])
        panels[name] = rows
        _bars(axes[0, j], rows, "incoherence", "KL incoherence")
        axes[0, j].set_title(name)
        _bars(axes[1, j], rows, "accuracy", "accuracy")
        for r in rows:
            key = f"{name}: {mc.label(r['model'], r['size'], r['budget'])}"
            i = r["incoherence"]
            res[key] = None if not np.isfinite([i["short"], i["long"]]).all() else i["long"] > i["short"]
            dacc[key] = r["accuracy"]["long"] - r["accuracy"]["short"]
    claims = [all_claim("fig03a", "the longer-than-median half has substantially higher incoherence",
                        "KL incoherence long half > short half", res,
                        detail="accuracy long − short: " + ", ".join(f"{k} {v:+.3f}" for k, v in dacc.items()))]
    mc.finish(fig)
    return fig, {"options": opts, "panels": panels, "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Figs. 7a, 17a

FIG07A_OPTS = {"budget_levels": BUDGET_LEVELS, "metric_family": "kl"}


def budget_levels(ds: xr.Dataset, dec: xr.Dataset, model: str, size: str,
                  mapping: dict[str, dict[str, str]]) -> list[tuple[str, str]]:
    """(level name, budget label) pairs of a model: its mapping where given and present in
    the cube, else every budget that ran (named by its label)."""
    bud = mc.run_budgets(ds, dec, model, size)
    m = mapping.get(model) or {}
    pairs = [(lv, b) for lv, b in m.items() if b in bud]
    return pairs or [(b, b) for b in bud]


def per_budget(ds: xr.Dataset, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Accuracy (mean over questions of :func:`hotmess.core.metrics.accuracy`) and
    incoherence per budget level, one entry per (model, size)."""
    fam = opts["metric_family"]
    dec = mc.decompose(ds, fam)
    inc = metrics.incoherence(dec["variance"], dec["error"])
    acc = metrics.accuracy(ds["outcome"], ds["target"]).mean("question", skipna=True)
    out = []
    for model in (str(m) for m in ds["model"].values):
        for size in mc.sizes_by_params(ds, model):
            pairs = budget_levels(ds, dec, model, size, opts["budget_levels"])
            if pairs:
                bl = [b for _, b in pairs]
                out.append({"model": model, "size": size, "levels": [lv for lv, _ in pairs], "budgets": bl,
                            "incoherence": mc.floats(inc.sel(model=model, size=size, budget=bl)),
                            "accuracy": mc.floats(acc.sel(model=model, size=size, budget=bl))})
    return out


def _budget_claim(fig: str, rows: list[dict[str, Any]]):
    res = {}
    for r in rows:
        if r["model"] == "sonnet4":
            continue  # the paper's exception
        i = r["incoherence"]
        res[mc.label(r["model"], r["size"], "")] = (i[-1] < i[0]) if len(i) > 1 and np.isfinite([i[0], i[-1]]).all() else None
    return all_claim(fig, "larger budgets slightly lower incoherence for every model but Sonnet 4",
                     "incoherence at the highest budget level < at the lowest (Sonnet 4 excluded)", res,
                     detail="not enough data = one budget per model")


@figure("fig07a", cubes=("gpqa_frontier",), title="Incoherence vs reasoning budget, GPQA (Fig. 7a)",
        options=FIG07A_OPTS, variables=MC_VARS,
        caption="KL incoherence per model at each reasoning budget (Sonnet 4 budgets mapped to "
                "Low/Medium/High by the option budget_levels), probability format.")
def build_fig07a(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG07A_OPTS, settings)
    mc.check_cubes(cubes, MC_VARS, "fig07a")
    rows = per_budget(cubes["gpqa_frontier"], opts)
    fig, axes = mc.new_figure(1, 1, w=5.5, h=4)
    ax = axes[0, 0]
    for r in rows:
        ax.plot(r["levels"], r["incoherence"], marker="o", label=mc.label(r["model"], r["size"], ""))
    ax.set(xlabel="budget level", ylabel=f"{mc.FAMILY_LABEL[opts['metric_family']]} incoherence", ylim=(0, 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    mc.finish(fig)
    return fig, {"options": opts, "rows": rows, "claims": [_budget_claim("fig07a", rows).to_dict()]}


FIG17_OPTS = {"budget_levels": BUDGET_LEVELS, "metric_family": "kl", "length": "output_tokens"}


@figure("fig17a", cubes=("gpqa_frontier",), title="Budgets vs natural variation, GPQA (Fig. 17a)",
        options=FIG17_OPTS, variables=(*MC_VARS, "output_tokens"),
        caption="Left: accuracy and KL incoherence per budget level. Right: the same for the "
                "below / at-or-above median length halves of each question's draws.")
def build_fig17a(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG17_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig17a")
    ds = cubes["gpqa_frontier"]
    rows = per_budget(ds, opts)
    split = halves(ds, opts["length"])
    fig, axes = mc.new_figure(2, 2)
    for r in rows:
        lab = mc.label(r["model"], r["size"], "")
        axes[0, 0].plot(r["levels"], r["accuracy"], marker="o", label=lab)
        axes[1, 0].plot(r["levels"], r["incoherence"], marker="o", label=lab)
    axes[0, 0].set(ylabel="accuracy", title="budget levels")
    axes[1, 0].set(ylabel="KL incoherence", xlabel="budget level")
    _bars(axes[0, 1], split, "accuracy", "accuracy")
    axes[0, 1].set_title("natural length split")
    _bars(axes[1, 1], split, "incoherence", "KL incoherence")
    for ax in axes[:, 0]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    d_budget = [abs(r["incoherence"][-1] - r["incoherence"][0]) for r in rows if len(r["incoherence"]) > 1]
    d_split = [abs(h["incoherence"]["long"] - h["incoherence"]["short"]) for h in split]
    d_budget = [v for v in d_budget if np.isfinite(v)]
    d_split = [v for v in d_split if np.isfinite(v)]
    ratio = (float(np.mean(d_budget)) / float(np.mean(d_split))) if d_budget and d_split and np.mean(d_split) > 0 else None
    claims = [_budget_claim("fig17a", rows),
              threshold_claim("fig17a", "the budget effect is far smaller than the natural-length split",
                              "mean |Δ incoherence| (highest − lowest budget) / mean |Δ| (long − short half) < 1",
                              ratio, lambda v: v < 1, enough=bool(d_budget and d_split),
                              detail=f"{len(d_budget)} models with >1 budget, {len(d_split)} split cells")]
    mc.finish(fig)
    return fig, {"options": opts, "rows": rows, "halves": split, "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Figs. 7b, 11

ENSEMBLE_OPTS = {"ensemble_sizes": [1, 2, 4, 8, 16, 32], "n_ensembles": 10, "ensemble_seed": None}


def ensemble_curve(ds: xr.Dataset, family: str, opts: dict[str, Any]) -> list[dict[str, Any]]:
    """Mean bias, mean variance and incoherence across ensemble members, per E, for every
    (model, size, budget) that ran.

    E values needing more draws than the cube has (``n_ensembles · E``) are left out and
    listed under ``skipped_E``.
    """
    dec0 = mc.decompose(ds, family)
    n_draws = ds.sizes["draw"]
    es = [int(e) for e in opts["ensemble_sizes"]]
    fit_e = [e for e in es if e * int(opts["n_ensembles"]) <= n_draws]
    out = []
    for m, s, b in mc.cells(ds, dec0):
        p = ds["outcome"].sel(model=m, size=s, budget=b)
        row = {"model": m, "size": s, "budget": b, "E": fit_e, "skipped_E": [e for e in es if e not in fit_e],
               "bias": [], "variance": [], "incoherence": []}
        for e in fit_e:
            ens = metrics.ensemble(p, e, int(opts["n_ensembles"]), rng=opts["ensemble_seed"])
            d = mc.FAMILIES[family](ens, ds["target"])
            row["bias"].append(float(d["bias"].mean(skipna=True)))
            row["variance"].append(float(d["variance"].mean(skipna=True)))
            row["incoherence"].append(float(metrics.incoherence(d["variance"], d["error"])))
        row["variance_fit"] = mc.positive_power_fit(row["E"], row["variance"])
        out.append(row)
    return out


def ensemble_figure(fig_name: str, family: str, cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(ENSEMBLE_OPTS, settings)
    mc.check_cubes(cubes, MC_VARS, fig_name)
    rows = ensemble_curve(cubes["gpqa_ensembling"], family, opts)
    fig, axes = mc.new_figure(1, 2)
    F = mc.FAMILY_LABEL[family]
    for r in rows:
        lab = mc.label(r["model"], r["size"], r["budget"])
        axes[0, 0].plot(r["E"], r["bias"], marker="o", label=f"{lab} bias")
        axes[0, 0].plot(r["E"], r["variance"], marker="s", ls="--",
                        label=f"{lab} variance (α = {r['variance_fit']['alpha']:.2f})")
        if r["E"] and np.isfinite(r["variance"][0]):
            axes[0, 0].plot(r["E"], [r["variance"][0] / e for e in r["E"]], "k:", lw=0.7, label="1/E guide")
        axes[0, 1].plot(r["E"], r["incoherence"], marker="o", label=lab)
    if not any(r["E"] for r in rows):
        mc.empty_note(axes[0, 0], f"fewer than {opts['n_ensembles']} draws: no ensemble size fits")
    vals = np.array([v for r in rows for v in r["bias"] + r["variance"]], dtype=float)
    axes[0, 0].set(xscale="log", yscale="log" if (vals > 0).any() else "linear", xlabel="ensemble size E",
                   ylabel=f"{F} bias / variance")
    axes[0, 1].set(xscale="log", xlabel="ensemble size E", ylabel=f"{F} incoherence", ylim=(0, 1))
    for ax in axes[0]:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    claims = []
    for r in rows:
        lab = mc.label(r["model"], r["size"], r["budget"])
        enough = len(r["E"]) > 1
        a = r["variance_fit"]["alpha"]
        if family == "brier":
            claims.append(threshold_claim(fig_name, "ensembling cuts variance ∝ 1/E",
                                          f"{lab}: power-law exponent of Brier variance vs E in [0.75, 1.25]",
                                          a, lambda v: 0.75 <= v <= 1.25, enough=enough,
                                          detail=f"E = {r['E']}; skipped {r['skipped_E']}"))
            rel = abs(r["bias"][-1] / r["bias"][0] - 1) if enough and r["bias"][0] > 0 else None
            claims.append(threshold_claim(fig_name, "ensembling leaves Brier bias flat",
                                          f"{lab}: |bias(E max) / bias(E=1) − 1| < 0.1", rel,
                                          lambda v: v < 0.1, enough=enough))
        else:
            claims.append(threshold_claim(fig_name, "ensembling cuts KL variance sharply",
                                          f"{lab}: variance(E=1) / variance(E max) > 2",
                                          r["variance"][0] / r["variance"][-1] if enough and r["variance"][-1] > 0 else None,
                                          lambda v: v > 2, enough=enough))
        inc = r["incoherence"]
        claims.append(threshold_claim(fig_name, "ensembling lowers incoherence",
                                      f"{lab}: {F} incoherence(E max) − incoherence(E=1) < 0",
                                      inc[-1] - inc[0] if enough else None, lambda v: v < 0, enough=enough))
    if not rows:
        claims.append(threshold_claim(fig_name, "ensembling cuts variance ∝ 1/E", "no cell ran", None,
                                      lambda v: False, enough=False))
    mc.finish(fig)
    return fig, {"options": opts, "family": family, "rows": rows, "claims": [c.to_dict() for c in claims]}


@figure("fig07b", cubes=("gpqa_ensembling",), title="Ensembling, Brier (Fig. 7b)", options=ENSEMBLE_OPTS,
        variables=MC_VARS,
        caption="o4-mini: Brier bias and variance across 10 disjoint ensembles of E draws each, "
                "and Brier incoherence, vs E.")
def build_fig07b(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    return ensemble_figure("fig07b", "brier", cubes, settings)


@figure("fig11", cubes=("gpqa_ensembling",), title="Ensembling, KL (Fig. 11)", options=ENSEMBLE_OPTS,
        variables=MC_VARS, caption="Fig. 7b with the KL decomposition.")
def build_fig11(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    return ensemble_figure("fig11", "kl", cubes, settings)


# ------------------------------------------------------------------------------ Fig. 21

FIG21_OPTS = {"bootstrap_n": [2, 5, 10, 20, 30, 50, 100], "n_boot": 100, "bootstrap_seed": 0,
              "band": 0.68, "stable_at": 30}


@figure("fig21", cubes=("gpqa_sample_efficiency",), title="Sample efficiency, bootstrap (Fig. 21)",
        options=FIG21_OPTS, variables=MC_VARS,
        caption="o3-mini (medium), 100 draws: dataset-average KL (left) and Brier (right) bias and "
                "variance of n draws resampled with replacement, mean and central band over replicates.")
def build_fig21(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG21_OPTS, settings)
    mc.check_cubes(cubes, MC_VARS, "fig21")
    ds = cubes["gpqa_sample_efficiency"]
    fig, axes = mc.new_figure(1, 2)
    ns = [int(n) for n in opts["bootstrap_n"]]
    out, claims = {}, []
    dec = mc.decompose(ds, "kl")
    for ax, fam in zip(axes[0], ("kl", "brier"), strict=True):
        fn = partial(mc.FAMILIES[fam])
        rows = []
        for m, s, b in mc.cells(ds, dec):
            cell = ds.sel(model=m, size=s, budget=b)
            bt = metrics.bootstrap_draws(fn, cell["outcome"], cell["target"], ns, int(opts["n_boot"]),
                                         rng=opts["bootstrap_seed"], ci=float(opts["band"]))
            row = {"model": m, "size": s, "budget": b, "n_draws": ns}
            for v in ("bias", "variance"):
                row[v] = mc.floats(bt[v])
                row[f"{v}_lower"] = mc.floats(bt[f"{v}_lower"])
                row[f"{v}_upper"] = mc.floats(bt[f"{v}_upper"])
                row[f"{v}_full"] = float(bt[f"{v}_full"])
                lo = np.clip(np.subtract(row[v], row[f"{v}_lower"]), 0, None)
                hi = np.clip(np.subtract(row[f"{v}_upper"], row[v]), 0, None)
                ax.errorbar(ns, row[v], yerr=[np.nan_to_num(lo), np.nan_to_num(hi)],
                            marker="o", capsize=2, label=f"{mc.label(m, s, b)} {v}")
            rows.append(row)
            at = opts["stable_at"]
            if at in ns and len(ns) > 1 and ns[-1] > at:
                i = ns.index(at)
                rels = [abs(row[v][i] / row[v][-1] - 1) for v in ("bias", "variance")
                        if row[v][-1] and np.isfinite([row[v][i], row[v][-1]]).all()]
                rel = max(rels) if rels else None
                claims.append(threshold_claim("fig21", f"dataset-level bias and variance stabilise at about {at} draws",
                                              f"{fam.upper()} {mc.label(m, s, b)}: max relative change n={at} → n={ns[-1]} < 0.1",
                                              rel, lambda v: v < 0.1, detail=f"{ds.sizes['draw']} draws in the cube"))
        ax.axvline(opts["stable_at"], color="k", ls=":", lw=0.8)
        ax.set(xscale="log", xlabel="draws per question (n)", ylabel=f"{mc.FAMILY_LABEL[fam]} mean bias / variance",
               title=mc.FAMILY_LABEL[fam])
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        out[fam] = rows
    if not claims:
        claims.append(threshold_claim("fig21", "dataset-level bias and variance stabilise at about 30 draws",
                                      f"option stable_at={opts['stable_at']} must be in bootstrap_n below its last entry",
                                      None, lambda v: False, enough=False))
    mc.finish(fig)
    return fig, {"options": opts, **out, "claims": [c.to_dict() for c in claims]}
