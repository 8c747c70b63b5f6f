"""Multiple-choice scaling figures: Figs. 4a, 5a-e, 12, 13, 14, 15, 16 (``docs/science.md``,
"Figures: multiple choice (GPQA, MMLU) and Table 1").

Difficulty groups (PAPER 1c): questions cut into ``n_groups`` equal-size groups by the
reference size's per-question mean length (:func:`hotmess.core.metrics.difficulty_groups`;
Qwen3-32B in the paper, option ``reference_size``, else the largest size that ran); the same
groups are used for every size. Per (group, size): :func:`hotmess.core.metrics.
incoherence_by_group` (Σ var / Σ err; mean bias, variance, error and length), mean accuracy
(:func:`hotmess.core.metrics.accuracy`), and power-law fits vs parameters
(:func:`hotmess.core.metrics.power_law_fit`; legends print the signed log-log slope).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from hotmess.core import metrics
from hotmess.paper import mc_common as mc
from hotmess.paper.claims import all_claim, threshold_claim
from hotmess.paper.mc_length import log_length_correlation
from hotmess.paper.registry import figure

SCALING_OPTS = {"n_groups": 5, "reference_size": "32B", "length": "output_tokens",
                "scaling_budget": None, "metric_family": "kl"}
MC_VARS = ("outcome", "target", "params")


def group_labels(n: int) -> list[str]:
    """The paper's five names (Easy … Hard) for 5 groups, else ``Group 1..n``."""
    return list(metrics.DIFFICULTY_LABELS) if n == 5 else [f"Group {i + 1}" for i in range(n)]


def scaling_table(ds: xr.Dataset, model: str, opts: dict[str, Any]) -> dict[str, Any] | None:
    """Every number of the scaling figures for one model of one cube.

    Returns
    -------
    dict or None
        ``model, budget, sizes, params, reference, groups`` (labels), ``group_size``
        (questions per group), ``reference_length`` (per question), ``length`` (per size,
        per question), and per family ``kl``/``brier``: ``{incoherence, bias, variance,
        error, length}`` as [group][size] lists, ``accuracy`` [group][size], ``fits``
        (per family and group: bias / variance power laws vs params, incoherence and
        accuracy slopes vs log params). None when no cell of the model ran.
    """
    dec0 = mc.decompose(ds, "kl")
    ok = mc.ran(dec0).sel(model=model)
    budgets = [str(b) for b in ds["budget"].values if bool(ok.sel(budget=b).any())]
    if not budgets:
        return None
    budget = opts["scaling_budget"] if opts["scaling_budget"] in budgets else budgets[0]
    sizes = [s for s in mc.sizes_by_params(ds, model) if bool(ok.sel(size=s, budget=budget))]
    cell = ds.sel(model=model, budget=budget, size=sizes)
    length = mc.length_of(cell, opts["length"])
    ref = opts["reference_size"] if opts["reference_size"] in sizes else sizes[-1]
    n = int(opts["n_groups"])
    labels = group_labels(n)
    ids = metrics.difficulty_groups(length.sel(size=ref), n, labels)
    qlen = mc.question_length(length)
    out: dict[str, Any] = {
        "model": model, "budget": budget, "sizes": sizes, "reference": ref, "groups": labels,
        "params": [mc.params_of(ds, model, s) for s in sizes],
        "group_size": [int((ids == g).sum()) for g in range(n)],
        "group_max_length": [float(qlen.sel(size=ref).where(ids == g).max()) for g in range(n)],
        "reference_length": mc.floats(qlen.sel(size=ref)),
        "length": {s: mc.floats(qlen.sel(size=s)) for s in sizes},
        "fits": {},
    }
    for fam in ("kl", "brier"):
        dec = mc.decompose(cell, fam)
        g = metrics.incoherence_by_group(dec["variance"], dec["error"], ids, labels=labels, length=length,
                                         bias=dec["bias"], group_dim="difficulty").transpose("difficulty", "size")
        out[fam] = {v: [mc.floats(row) for row in g[v].values] for v in
                    ("incoherence", "bias", "variance", "error", "length")}
        out["fits"][fam] = {}
        for gi, lab in enumerate(labels):
            out["fits"][fam][lab] = {
                "bias": mc.positive_power_fit(out["params"], out[fam]["bias"][gi]),
                "variance": mc.positive_power_fit(out["params"], out[fam]["variance"][gi]),
                "incoherence_slope": mc.trend_slope(out["params"], out[fam]["incoherence"][gi]),
            }
    acc = metrics.accuracy(cell["outcome"], cell["target"])
    gm = mc.group_mean(acc, ids, n).transpose("group", "size")
    out["accuracy"] = [mc.floats(row) for row in gm.values]
    out["accuracy_slope"] = [mc.trend_slope(out["params"], row) for row in out["accuracy"]]
    return out


def tables(cubes: dict[str, xr.Dataset], opts: dict[str, Any], models: tuple[str, ...] | None = None
           ) -> list[tuple[str, dict[str, Any]]]:
    """``(cube, table)`` for every model (or those in ``models``) of every cube that ran."""
    out = []
    for name, ds in cubes.items():
        for m in (str(v) for v in ds["model"].values):
            if models and m not in models:
                continue
            t = scaling_table(ds, m, opts)
            if t is not None:
                out.append((name, t))
    return out


def _hard_easy(t: dict[str, Any]) -> tuple[int, int]:
    """Indices of the hardest and the easiest group with questions."""
    have = [i for i, k in enumerate(t["group_size"]) if k > 0]
    return (have[-1], have[0]) if have else (-1, 0)


def _per_group(ax, t: dict[str, Any], rows: list[list[float]], ylabel: str, *, log_y: bool = False,
               fits: list[dict] | None = None, ls: str = "-", suffix: str = "") -> None:
    for gi, lab in enumerate(t["groups"]):
        extra = ""
        if fits is not None and np.isfinite(fits[gi]["slope"]):
            extra = f" (α = {fits[gi]['slope']:.2f}, R² = {fits[gi]['r2']:.2f})"
        ax.plot(t["params"], rows[gi], ls, marker="o", color=f"C{gi}", label=f"{lab}{suffix}{extra}")
    ax.set(xscale="log", xlabel="parameters", ylabel=ylabel)
    if log_y:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=5)


# ------------------------------------------------------------------------------ Fig. 4a


@figure("fig04a", cubes=("mmlu_qwen3",), title="Incoherence vs size per difficulty group, MMLU (Fig. 4a)",
        options=SCALING_OPTS, variables=(*MC_VARS, "output_tokens"),
        caption="Qwen3 on MMLU: KL incoherence vs model size for five difficulty groups set by "
                "Qwen3-32B's reasoning length.")
def build_fig04a(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(SCALING_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig04a")
    fam = opts["metric_family"]
    tabs = tables(cubes, opts)
    fig, axes = mc.new_figure(1, max(1, len(tabs)))
    res = {}
    for ax, (name, t) in zip(axes[0], tabs, strict=False):
        _per_group(ax, t, t[fam]["incoherence"], f"{mc.FAMILY_LABEL[fam]} incoherence")
        ax.set(title=f"{name}: {t['model']}", ylim=(0, 1))
        h, e = _hard_easy(t)
        sh, se = t["fits"][fam][t["groups"][h]]["incoherence_slope"], t["fits"][fam][t["groups"][e]]["incoherence_slope"]
        known = np.isfinite(sh) and np.isfinite(se) and h != e
        res[f"{t['model']}: easiest falls"] = bool(se < 0) if known else None
        res[f"{t['model']}: hardest above easiest"] = bool(sh > se) if known else None
    if not tabs:
        mc.empty_note(axes[0, 0], "no cell ran")
    claims = [all_claim("fig04a", "incoherence falls with size for easy groups, flat or rising for the hardest",
                        "slope vs log size: easiest group < 0, hardest group > easiest", res)]
    mc.finish(fig)
    return fig, {"options": opts, "tables": [dict(t, cube=n) for n, t in tabs],
                 "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Figs. 5 and 12


def _scaling_claims(fig: str, t: dict[str, Any], fam: str) -> list:
    h, e = _hard_easy(t)
    H, E = t["groups"][h], t["groups"][e]
    fits = t["fits"][fam]
    enough = len(t["sizes"]) > 1 and h != e
    acc = (t["accuracy_slope"][h] - t["accuracy_slope"][e]) if enough else None
    hv = (fits[H]["bias"]["alpha"] - fits[H]["variance"]["alpha"]) if enough else None
    ev = (fits[E]["variance"]["alpha"] - fits[H]["variance"]["alpha"]) if enough else None
    return [
        threshold_claim(fig, "accuracy improves with size, fastest for the hardest group",
                        "accuracy slope vs log size: hardest − easiest > 0", acc, lambda v: v > 0,
                        enough=enough, detail=f"{t['model']}, {len(t['sizes'])} sizes"),
        threshold_claim(fig, "in the hardest group the variance slope is shallower than the bias slope",
                        f"{mc.FAMILY_LABEL[fam]} α_bias − α_variance (hardest group) > 0", hv, lambda v: v > 0,
                        enough=enough, detail=f"α from y ∝ N^−α; {H}"),
        threshold_claim(fig, "variance slopes flatten with difficulty",
                        f"{mc.FAMILY_LABEL[fam]} α_variance: easiest − hardest > 0", ev, lambda v: v > 0,
                        enough=enough, detail=f"{E} vs {H}"),
    ]


def scaling_details(fig_name: str, cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    """Figs. 5 (MMLU) and 12 (GPQA): panels (a) reference-length distribution with group
    boundaries, (b) length correlation with the reference, (c) accuracy, (d) bias and variance
    with power-law fits, (e) incoherence, all per group vs size."""
    opts = mc.options(SCALING_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), fig_name)
    fam = opts["metric_family"]
    tabs = tables(cubes, opts)
    fig, axes = mc.new_figure(max(1, len(tabs)), 6, w=3.3, h=3.0)
    claims = []
    for row, (name, t) in zip(axes, tabs, strict=False):
        ref = np.asarray(t["reference_length"], dtype=float)
        fin = ref[np.isfinite(ref) & (ref > 0)]
        if fin.size:
            row[0].hist(fin, bins=np.geomspace(fin.min(), fin.max() * 1.0001, 20) if fin.min() < fin.max() else 5)
            for b in t["group_max_length"][:-1]:
                if np.isfinite(b):
                    row[0].axvline(b, color="k", lw=0.8, ls=":")
            row[0].set_xscale("log")
        row[0].set(title=f"(a) {name}: {t['model']} {t['reference']} lengths", xlabel="mean length")
        t["length_correlation"] = {}
        for s in t["sizes"]:
            if s == t["reference"]:
                continue
            r = log_length_correlation(t["reference_length"], t["length"][s])
            t["length_correlation"][s] = r
            row[1].scatter(t["reference_length"], t["length"][s], s=6, label=f"{s} (r = {r:.2f})")
        row[1].set(xscale="log", yscale="log", title="(b) length vs reference", xlabel=t["reference"])
        row[1].legend(fontsize=5)
        _per_group(row[2], t, t["accuracy"], "accuracy")
        row[2].set_title("(c) accuracy")
        f = t["fits"][fam]
        _per_group(row[3], t, t[fam]["bias"], f"{mc.FAMILY_LABEL[fam]} bias", log_y=True,
                   fits=[f[g]["bias"] for g in t["groups"]])
        row[3].set_title("(d) bias")
        _per_group(row[4], t, t[fam]["variance"], f"{mc.FAMILY_LABEL[fam]} variance", log_y=True,
                   fits=[f[g]["variance"] for g in t["groups"]])
        row[4].set_title("(d) variance")
        _per_group(row[5], t, t[fam]["incoherence"], "incoherence")
        row[5].set(title="(e) incoherence", ylim=(0, 1))
        claims += _scaling_claims(fig_name, t, fam)
    if not tabs:
        mc.empty_note(axes[0, 0], "no cell ran")
    mc.finish(fig)
    return fig, {"options": opts, "tables": [dict(t, cube=n) for n, t in tabs],
                 "claims": [c.to_dict() for c in claims]}


@figure("fig05", cubes=("mmlu_qwen3",), title="Qwen3 MMLU scaling details (Fig. 5a-e)",
        options=SCALING_OPTS, variables=(*MC_VARS, "output_tokens"),
        caption="(a) Qwen3-32B length distribution and group boundaries, (b) length correlation, "
                "(c) accuracy, (d) bias and variance with power laws (α = signed slope), "
                "(e) incoherence, per difficulty group vs size.")
def build_fig05(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    return scaling_details("fig05", cubes, settings)


@figure("fig12", cubes=("gpqa_qwen3",), title="Qwen3 GPQA scaling details (Fig. 12 = Fig. 5 on GPQA)",
        options=SCALING_OPTS, variables=(*MC_VARS, "output_tokens"),
        caption="Fig. 5's panels on GPQA; groups from Qwen3-32B's GPQA lengths.")
def build_fig12(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    return scaling_details("fig12", cubes, settings)


# ------------------------------------------------------------------------------ Fig. 13

FIG13_OPTS = {**SCALING_OPTS, "iso_lines": [0.09, 0.32, 0.50, 0.68], "log_axes": True}


@figure("fig13", cubes=("gpqa_qwen3", "mmlu_qwen3"), need="any",
        title="Bias vs variance plane, Qwen3 (Fig. 13)", options=FIG13_OPTS,
        variables=(*MC_VARS, "output_tokens"),
        caption="Mean bias (x) vs mean variance (y) per difficulty group (colour) and size "
                "(marker); iso-incoherence lines variance = bias · i/(1 − i).")
def build_fig13(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG13_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig13")
    fam = opts["metric_family"]
    tabs = tables(cubes, opts)
    fig, axes = mc.new_figure(1, max(1, len(tabs)))
    markers = "osD^v<>p*h"
    res = {}
    for ax, (name, t) in zip(axes[0], tabs, strict=False):
        b = np.asarray(t[fam]["bias"], dtype=float)
        v = np.asarray(t[fam]["variance"], dtype=float)
        for gi, lab in enumerate(t["groups"]):
            for si in range(len(t["sizes"])):
                ax.scatter(b[gi, si], v[gi, si], color=f"C{gi}", marker=markers[si % len(markers)],
                           label=lab if si == 0 else None)
            ax.plot(b[gi, [0, -1]], v[gi, [0, -1]], color=f"C{gi}", lw=0.8)
        pos = np.concatenate([b[np.isfinite(b) & (b > 0)], v[np.isfinite(v) & (v > 0)]])
        lo, hi = (pos.min() / 2, pos.max() * 2) if pos.size else (1e-3, 1.0)
        xs = np.geomspace(lo, hi, 50)
        t["iso_lines"] = {}
        for i in opts["iso_lines"]:
            ax.plot(xs, xs * i / (1 - i), "k:", lw=0.6)
            t["iso_lines"][str(i)] = i / (1 - i)  # variance / bias ratio of the line
        if opts["log_axes"]:
            ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
        ax.set(xlabel=f"{mc.FAMILY_LABEL[fam]} bias", ylabel=f"{mc.FAMILY_LABEL[fam]} variance",
               title=f"{name}: {t['model']}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
        h, _ = _hard_easy(t)
        inc, err = t[fam]["incoherence"][h], t[fam]["error"][h]
        ok = len(t["sizes"]) > 1 and all(np.isfinite([inc[0], inc[-1], err[0], err[-1]]))
        res[f"{name}: {t['model']}"] = bool(inc[-1] > inc[0] and err[-1] < err[0]) if ok else None
    if not tabs:
        mc.empty_note(axes[0, 0], "no cell ran")
    claims = [all_claim("fig13", "scaling moves the hardest group toward higher incoherence while error drops",
                        "hardest group: incoherence(largest) > (smallest) and error(largest) < (smallest)", res)]
    mc.finish(fig)
    return fig, {"options": opts, "tables": [dict(t, cube=n) for n, t in tabs],
                 "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Fig. 14

FIG14_OPTS = {**SCALING_OPTS, "fit_log_incoherence": False}


@figure("fig14", cubes=("gpqa_qwen3", "mmlu_qwen3"), need="any",
        title="Incoherence over length x size, Qwen3 (Fig. 14)", options=FIG14_OPTS,
        variables=(*MC_VARS, "output_tokens"),
        caption="Least-squares fit incoherence ≈ a + b·log L + c·log N over the (group, size) "
                "cells (contour) with the cells as points.")
def build_fig14(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    opts = mc.options(FIG14_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), "fig14")
    fam = opts["metric_family"]
    tabs = tables(cubes, opts)
    fig, axes = mc.new_figure(1, max(1, len(tabs)))
    res, panels = {}, []
    for ax, (name, t) in zip(axes[0], tabs, strict=False):
        L = np.asarray(t[fam]["length"], dtype=float)
        N = np.broadcast_to(np.asarray(t["params"], dtype=float), L.shape)
        Y = np.asarray(t[fam]["incoherence"], dtype=float)
        ok = np.isfinite(L) & np.isfinite(N) & np.isfinite(Y) & (L > 0) & (N > 0)
        if opts["fit_log_incoherence"]:
            ok &= Y > 0
        panel = {"cube": name, "model": t["model"], "cells": {"length": L[ok].tolist(), "params": N[ok].tolist(),
                                                              "incoherence": Y[ok].tolist()}, "fit": None}
        enough = np.unique(N[ok]).size > 1 and np.unique(L[ok]).size > 1 and ok.sum() >= 3
        if enough:
            jf = metrics.joint_fit_incoherence(L[ok], N[ok], Y[ok], log_incoherence=bool(opts["fit_log_incoherence"]))
            panel["fit"] = jf._asdict()
            gl, gn = np.meshgrid(np.geomspace(L[ok].min(), L[ok].max(), 40), np.geomspace(N[ok].min(), N[ok].max(), 40))
            cs = ax.contourf(gl, gn, jf.predict(gl, gn), levels=12, cmap="viridis")
            fig.colorbar(cs, ax=ax, label="fitted incoherence")
            res[f"{name}: {t['model']}"] = abs(jf.length_coef) > abs(jf.size_coef)
        else:
            res[f"{name}: {t['model']}"] = None
        ax.scatter(L[ok], N[ok], c=Y[ok], cmap="viridis", edgecolors="k", vmin=0, vmax=1)
        ax.set(xscale="log", yscale="log", xlabel="mean length (group)", ylabel="parameters", title=f"{name}: {t['model']}")
        panels.append(panel)
    if not tabs:
        mc.empty_note(axes[0, 0], "no cell ran")
    claims = [all_claim("fig14", "length predicts incoherence more strongly than size",
                        "|coefficient of log length| > |coefficient of log size| in the joint fit", res,
                        detail="not enough data = one size or fewer than 3 cells")]
    mc.finish(fig)
    return fig, {"options": opts, "panels": panels, "claims": [c.to_dict() for c in claims]}


# ------------------------------------------------------------------------------ Figs. 15 and 16


def families_figure(fig_name: str, cubes: dict[str, xr.Dataset], settings: dict[str, Any],
                    expect_rise: dict[str, bool], paper: str):
    """Figs. 15 (MMLU) and 16 (GPQA): one column per model family; rows: bias and variance,
    accuracy, Brier incoherence, KL incoherence vs size per group (each family's groups from
    its own reference size)."""
    opts = mc.options(SCALING_OPTS, settings)
    mc.check_cubes(cubes, (*MC_VARS, opts["length"]), fig_name)
    tabs = tables(cubes, opts)
    fig, axes = mc.new_figure(4, max(1, len(tabs)), w=3.4, h=2.8)
    res = {}
    for j, (name, t) in enumerate(tabs):
        col = axes[:, j]
        _per_group(col[0], t, t["kl"]["bias"], "KL bias (—), variance (--)", log_y=True)
        _per_group(col[0], t, t["kl"]["variance"], "KL bias (—), variance (--)", log_y=True, ls="--", suffix=" var")
        col[0].set_title(f"{name}: {t['model']}")
        _per_group(col[1], t, t["accuracy"], "accuracy")
        _per_group(col[2], t, t["brier"]["incoherence"], "Brier incoherence")
        _per_group(col[3], t, t["kl"]["incoherence"], "KL incoherence")
        h, _ = _hard_easy(t)
        s = t["fits"]["kl"][t["groups"][h]]["incoherence_slope"]
        want = expect_rise.get(t["model"], True)
        res[f"{t['model']} ({'rises' if want else 'does not rise'})"] = None if not np.isfinite(s) else (s > 0) == want
    if not tabs:
        mc.empty_note(axes[0, 0], "no cell ran")
    claims = [all_claim(fig_name, paper, "hardest-group KL incoherence slope vs log size: > 0 where the paper "
                        "says it rises, ≤ 0 where not", res)]
    mc.finish(fig)
    return fig, {"options": opts, "tables": [dict(t, cube=n) for n, t in tabs],
                 "claims": [c.to_dict() for c in claims]}


@figure("fig15", cubes=("mmlu_qwen3", "mmlu_open"), need="any", title="MMLU across families (Fig. 15)",
        options=SCALING_OPTS, variables=(*MC_VARS, "output_tokens"),
        caption="Columns Qwen3 / Gemma3 / Llama3 on MMLU: bias and variance, accuracy, Brier and "
                "KL incoherence per difficulty group vs size.")
def build_fig15(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    return families_figure("fig15", cubes, settings, {"qwen3": True, "gemma3": True, "llama3": False},
                           "on MMLU the hardest group trends more incoherent with size for Qwen3 and Gemma3, not Llama3")


@figure("fig16", cubes=("gpqa_qwen3", "gpqa_open"), need="any", title="GPQA across families (Fig. 16)",
        options=SCALING_OPTS, variables=(*MC_VARS, "output_tokens"),
        caption="Fig. 15's layout on GPQA (Gemma3 and Llama3 0-shot CoT).")
def build_fig16(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    return families_figure("fig16", cubes, settings, {},
                           "on GPQA the hardest group tends to become more incoherent with size in all families")
