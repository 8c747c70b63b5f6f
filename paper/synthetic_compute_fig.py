"""The synthetic optimizer's claims against training compute (beyond the paper; issue 14).

``scripts/synthetic_study.py compute`` runs the whole synthetic experiment for several
training budgets (optimizer steps) and training seeds (initialisation and batch order; the
problem and the start points are fixed) and condenses every run's cube with
:func:`hotmess.paper.synthetic_figs.claim_statistics` into one summary cube,
``<results>/synthetic_compute/cube.nc`` (:func:`summary_cube`), dims ``budget x train_seed x
size``. The figure ``figsyn_compute`` recomputes from it, per (budget, seed), the statistics
behind the paper's claims (power-law exponents of final bias^2 and variance in size, slope of
final incoherence in log size, whether incoherence rises with step for every size, test-loss
exponent) and plots them against the budget with every seed shown, so the robustness of each
size trend is measured, not assumed (``docs/science.md#the-synthetic-optimizer``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

from hotmess.paper.claims import AGREES, DISAGREES, NOT_ENOUGH, Claim
from hotmess.paper.registry import figure

CUBE = "synthetic_compute"
PER_SIZE = ("final_bias", "final_variance", "final_incoherence", "test_loss", "step_slope", "exit_step")


def summary_cube(runs: list[tuple[int, int, xr.Dataset]], settings: dict | None = None) -> xr.Dataset:
    """Condense synthetic cubes into the compute-study cube.

    Parameters
    ----------
    runs : list of (budget, train_seed, cube)
        Every cube must have the same sizes.
    settings : dict, optional
        Figure settings for :func:`~hotmess.paper.synthetic_figs.claim_statistics`.

    Returns
    -------
    xarray.Dataset
        Dims ``budget x train_seed x size``: ``final_bias``, ``final_variance``,
        ``final_incoherence``, ``test_loss``, ``step_slope`` (incoherence per 100 rollout
        steps), ``exit_step`` (median step of leaving the teacher), ``train_seconds``;
        coordinate ``params(size)``. Cells of a (budget, seed) not run are NaN.

    Raises
    ------
    ValueError
        No runs, or cubes with different sizes.
    """
    from hotmess.paper.synthetic_figs import claim_statistics

    if not runs:
        raise ValueError("no synthetic runs to summarise")
    budgets = sorted({int(b) for b, _, _ in runs})
    seeds = sorted({int(s) for _, s, _ in runs})
    sizes = [str(s) for s in runs[0][2]["size"].values]
    arr = {k: np.full((len(budgets), len(seeds), len(sizes)), np.nan) for k in PER_SIZE + ("train_seconds",)}
    params = None
    for b, s, ds in runs:
        if [str(x) for x in ds["size"].values] != sizes:
            raise ValueError(f"run budget={b} seed={s} has sizes {list(ds['size'].values)}, expected {sizes}")
        st = claim_statistics(ds, settings)
        i, j = budgets.index(int(b)), seeds.index(int(s))
        arr["final_bias"][i, j] = st["final_bias"]
        arr["final_variance"][i, j] = st["final_variance"]
        arr["final_incoherence"][i, j] = st["final_incoherence"]
        arr["test_loss"][i, j] = st["test_loss"]
        arr["step_slope"][i, j] = [st["step_slopes"][z]["slope_per_100_steps"] for z in sizes]
        arr["exit_step"][i, j] = [st["tracking"][z]["median_exit_step"] for z in sizes]
        if "train_seconds" in ds:
            arr["train_seconds"][i, j] = ds["train_seconds"].isel(model=0).values
        params = st["params"]
    dims = ("budget", "train_seed", "size")
    out = xr.Dataset({k: (dims, v) for k, v in arr.items()},
                     coords={"budget": ("budget", budgets, {"long_name": "training optimizer steps"}),
                             "train_seed": seeds, "size": sizes,
                             "params": ("size", np.asarray(params, dtype=np.int64))})
    out["train_seconds"].attrs["units"] = "s"
    out["step_slope"].attrs["long_name"] = "least-squares slope of incoherence vs rollout step, per 100 steps"
    out["exit_step"].attrs["long_name"] = "median rollout step at which a start leaves the teacher"
    from hotmess.core import schema

    out.attrs.update({"experiment": CUBE, "source": "scripts/synthetic_study.py compute",
                      "runs": json.dumps([[int(b), int(s)] for b, s, _ in runs])})
    schema.stamp(out.attrs, "summary")
    return out


def _alpha(params, y):
    """alpha of y ~ params^-alpha by least squares on log-log axes (NaN if < 2 valid points)."""
    x, y = np.log(np.asarray(params, float)), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    if ok.sum() < 2:
        return float("nan")
    return float(-np.polyfit(x[ok], np.log(y[ok]), 1)[0])


def _slope_log10(params, y):
    x, y = np.log10(np.asarray(params, float)), np.asarray(y, float)
    ok = np.isfinite(y)
    return float(np.polyfit(x[ok], y[ok], 1)[0]) if ok.sum() >= 2 else float("nan")


def run_statistics(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """Per (budget, train_seed): ``bias_alpha``, ``variance_alpha``, ``alpha_gap`` (bias minus
    variance), ``incoherence_size_slope`` (per decade of parameters), ``loss_alpha``,
    ``bias_faster`` (1 where bias alpha > 0 and alpha gap > 0, else 0), ``rising_sizes`` (fraction of sizes whose incoherence rises with step), ``exit_size_slope``
    (slope of the median step of leaving the teacher per decade of parameters); arrays of shape
    (budget, train_seed), NaN where the run is missing."""
    p = ds["params"].values
    nb, ns = ds.sizes["budget"], ds.sizes["train_seed"]
    out = {k: np.full((nb, ns), np.nan) for k in ("bias_alpha", "variance_alpha", "alpha_gap",
                                                  "incoherence_size_slope", "loss_alpha", "rising_sizes",
                                                  "exit_size_slope", "bias_faster")}
    for i in range(nb):
        for j in range(ns):
            cell = ds.isel(budget=i, train_seed=j)
            if not np.isfinite(cell["final_bias"].values).any():
                continue
            out["bias_alpha"][i, j] = _alpha(p, cell["final_bias"].values)
            out["variance_alpha"][i, j] = _alpha(p, cell["final_variance"].values)
            out["alpha_gap"][i, j] = out["bias_alpha"][i, j] - out["variance_alpha"][i, j]
            out["bias_faster"][i, j] = float(out["bias_alpha"][i, j] > 0 and out["alpha_gap"][i, j] > 0)
            out["incoherence_size_slope"][i, j] = _slope_log10(p, cell["final_incoherence"].values)
            out["loss_alpha"][i, j] = _alpha(p, cell["test_loss"].values)
            out["rising_sizes"][i, j] = float(np.mean(cell["step_slope"].values > 0))
            out["exit_size_slope"][i, j] = _slope_log10(p, cell["exit_step"].values)
    return out


def _share(v, test):
    v = v[np.isfinite(v)]
    return (int(sum(test(x) for x in v)), int(v.size))


@figure("figsyn_compute", cubes=(CUBE,), title="Synthetic optimizer: the claims against training compute",
        options={}, variables=("final_bias", "final_variance", "final_incoherence", "test_loss", "step_slope"),
        caption="Statistics behind the paper's synthetic claims against the training budget (optimizer steps), "
                "one dot per training seed, line = mean, band = min-max over seeds: a) power-law exponents of final bias^2 and variance in "
                "size; b) slope of final incoherence per decade of parameters; c) final incoherence per size; "
                "d) test-loss exponent and the fraction of sizes whose incoherence rises with step; e) slope of the "
                "step at which rollouts leave the teacher per decade of parameters.")
def figsyn_compute(cubes: dict[str, xr.Dataset], settings: dict | None = None):
    import matplotlib.pyplot as plt

    ds = cubes[CUBE]
    st = run_statistics(ds)
    budgets = ds["budget"].values.astype(float)
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.8))

    def series(ax, key, color, label):
        v = st[key]
        for j in range(v.shape[1]):
            ax.plot(budgets, v[:, j], "o", color=color, alpha=0.5, ms=4)
        with np.errstate(all="ignore"):
            lo, hi = np.nanmin(v, axis=1), np.nanmax(v, axis=1)
        ax.fill_between(budgets, lo, hi, color=color, alpha=0.15, lw=0)
        ax.plot(budgets, np.nanmean(v, axis=1), "-", color=color, label=label)

    ax = axes[0]
    series(ax, "bias_alpha", "C3", "bias² alpha")
    series(ax, "variance_alpha", "C0", "variance alpha")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_title("a) final bias² / variance ~ N^-alpha")
    ax = axes[1]
    series(ax, "incoherence_size_slope", "C2", "d(final incoherence) / d log10 N")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_title("b) final incoherence vs size: slope")
    ax = axes[2]
    colors = [plt.cm.viridis(v) for v in np.linspace(0, 0.9, ds.sizes["size"])]
    for k, (s, c) in enumerate(zip(ds["size"].values, colors, strict=True)):
        v = ds["final_incoherence"].isel(size=k).values
        for j in range(v.shape[1]):
            ax.plot(budgets, v[:, j], "o", color=c, alpha=0.5, ms=4)
        ax.plot(budgets, np.nanmean(v, axis=1), "-", color=c, label=f"{s}")
    ax.set_ylim(0, 1.02)
    ax.set_title("c) final incoherence per size")
    ax = axes[3]
    series(ax, "loss_alpha", "C1", "test-loss alpha")
    series(ax, "rising_sizes", "C4", "share of sizes: incoherence rises with step")
    ax.set_title("d) loss exponent; rising incoherence")
    ax = axes[4]
    series(ax, "exit_size_slope", "C5", "d(step of leaving the teacher) / d log10 N")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_title("e) following the teacher vs size: slope")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(budgets, [f"{int(b)}" for b in budgets])
        ax.minorticks_off()
        ax.set_xlabel("training steps")
        ax.legend(fontsize=7)
    fig.tight_layout()
    top = len(budgets) - 1
    claims = []
    for key, paper, measure, test in (
        ("bias_faster", "scale reduces bias much faster than variance",
         "alpha(bias^2) > 0 and > alpha(variance), share of training seeds at the largest budget",
         lambda v: v > 0),
        ("incoherence_size_slope", "final incoherence rises with size",
         "slope of final incoherence vs log10 N > 0, share of seeds at the largest budget", lambda v: v > 0),
        ("rising_sizes", "incoherence rises with step for every size",
         "every size's incoherence-vs-step slope > 0, share of seeds at the largest budget", lambda v: v == 1.0),
        ("loss_alpha", "test loss falls as a power law in size",
         "test-loss alpha > 0, share of seeds at the largest budget", lambda v: v > 0),
        ("exit_size_slope", "larger models follow the teacher's trajectory longer",
         "slope of the step of leaving the teacher vs log10 N > 0, share of seeds at the largest budget",
         lambda v: v > 0),
    ):
        k, n = _share(st[key][top], test)
        if n == 0:
            claims.append(Claim("figsyn_compute", paper, measure, None, NOT_ENOUGH, "no run at the largest budget"))
            continue
        per_budget = "; ".join(f"{int(b)} steps: {_share(st[key][i], test)[0]}/{_share(st[key][i], test)[1]}"
                               for i, b in enumerate(budgets))
        verdict = AGREES if k == n else DISAGREES
        claims.append(Claim("figsyn_compute", paper, measure, f"{k}/{n} seeds", verdict,
                            f"by budget: {per_budget}"))
    numbers = {"budget": budgets.tolist(), "train_seed": ds["train_seed"].values.tolist(),
               "sizes": [str(s) for s in ds["size"].values], "params": ds["params"].values.tolist(),
               **{k: v.tolist() for k, v in st.items()},
               "final_incoherence": ds["final_incoherence"].values.tolist(),
               "train_seconds": ds["train_seconds"].values.tolist(), "claims": [c.to_dict() for c in claims]}
    return fig, numbers


def write_summary(root: str | Path, settings: dict | None = None) -> Path:
    """Summarise ``<root>/steps<B>_seed<s>/cube.nc`` into ``<root>/cube.nc`` (atomically)."""
    import os

    root = Path(root)
    runs = []
    for cube in sorted(root.glob("steps*_seed*/cube.nc")):
        budget, seed = cube.parent.name[len("steps"):].split("_seed")
        runs.append((int(budget), int(seed), xr.load_dataset(cube)))
    ds = summary_cube(runs, settings)
    tmp = root / "cube.nc.tmp"
    ds.to_netcdf(tmp, engine="netcdf4")
    os.replace(tmp, root / "cube.nc")
    return root / "cube.nc"
