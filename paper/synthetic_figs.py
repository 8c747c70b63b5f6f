"""Figures of the synthetic optimizer (the paper's sections 1b, 3 and 5; docs/science.md): Figs. 2d, 4c, 6, 26.

All numbers are recomputed from the cube's iterates (``outcome``: model x size x step x
question x draw x coordinate) through :func:`hotmess.core.metrics.point_decomposition`
(bias^2 = ||E x_t - b||_A^2, variance = E ||x_t - E x_t||_A^2 over start points), then
:func:`~hotmess.core.metrics.incoherence` (sum of variance / sum of error over problem
instances) and :func:`~hotmess.core.metrics.power_law_fit`
(``docs/science.md#the-synthetic-optimizer``).

Every builder records the paper's claims for its figure as :class:`~hotmess.paper.claims.Claim`
rows (``numbers["claims"]``), computed by :func:`claim_statistics`, and names its OPEN
choices in :data:`OPTIONS`:

* ``final_window`` (0.1): "final" quantities average bias and variance over the last fraction
  of the recorded steps, so that the steady-state oscillation of a converged rollout does not
  make them depend on one step (the paper: "the final points", step 2048);
* ``exit_teacher_steps`` (10): a rollout has left the teacher once it is farther from the
  teacher's iterate than this many teacher steps (Fig. 26's "follow the teacher longer");
* ``trajectory_draw`` (0) and ``trajectory_size`` ("largest"): the start point and the model
  of Fig. 6a, and the start point of Fig. 26's f(x_t) panels (the paper: "one fixed start");
* ``step_axis`` ("linear"): the x axis of Fig. 2d (the paper leaves its scale OPEN).
"""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from hotmess.core import metrics
from hotmess.paper.claims import AGREES, DISAGREES, NOT_ENOUGH, Claim, all_claim, threshold_claim
from hotmess.paper.registry import figure

CUBE = "synthetic"
FINAL_WINDOW = 0.1
#: The OPEN choices of the synthetic figures and their defaults (figure settings).
OPTIONS = {"final_window": FINAL_WINDOW, "exit_teacher_steps": 10.0, "trajectory_draw": 0,
           "trajectory_size": "largest", "step_axis": "linear"}


def decomposition(ds: xr.Dataset) -> xr.Dataset:
    """Per-step ``bias``, ``variance``, ``error`` (model x size x step x question) and
    ``incoherence`` (model x size x step) of the models, plus the same for the teacher
    (``teacher_*``, dims step [x question])."""
    dec = metrics.point_decomposition(ds["outcome"], ds["minimiser"], ds["hessian"])
    out = dec[["bias", "variance", "error"]]
    out["incoherence"] = metrics.incoherence(dec["variance"], dec["error"], dim="question")
    if "teacher" in ds:
        t = metrics.point_decomposition(ds["teacher"], ds["minimiser"], ds["hessian"])
        for k in ("bias", "variance", "error"):
            out[f"teacher_{k}"] = t[k]
        out["teacher_incoherence"] = metrics.incoherence(t["variance"], t["error"], dim="question")
    return out


def final_window(ds: xr.Dataset, frac: float = FINAL_WINDOW) -> np.ndarray:
    """Boolean mask over ``step``: the last ``frac`` of the recorded steps (at least one)."""
    n = ds.sizes["step"]
    k = max(1, int(round(n * frac)))
    mask = np.zeros(n, dtype=bool)
    mask[n - k:] = True
    return mask


def finals(ds: xr.Dataset, dec: xr.Dataset, frac: float = FINAL_WINDOW) -> dict[str, np.ndarray]:
    """Final bias, variance, error (summed over questions, averaged over the final window) and
    final incoherence per size (model index 0)."""
    w = final_window(ds, frac)
    sel = dec.isel(model=0, step=w)
    bias = sel["bias"].sum("question").mean("step").values
    var = sel["variance"].sum("question").mean("step").values
    err = sel["error"].sum("question").mean("step").values
    return {"params": ds["params"].isel(model=0).values.astype(float), "bias": bias, "variance": var,
            "error": err, "incoherence": var / err}


def incoherence_slopes(ds: xr.Dataset, dec: xr.Dataset, frac: float = FINAL_WINDOW) -> dict[str, dict[str, float]]:
    """Per size: least-squares slope of incoherence against step (per 100 steps), and the
    incoherence at the first step, the middle step and the end (final window)."""
    steps = ds["step"].values.astype(float)
    out = {}
    w = final_window(ds, frac)
    for i, size in enumerate(ds["size"].values):
        inc = dec["incoherence"].isel(model=0, size=i).values
        ok = np.isfinite(inc)
        slope = float(np.polyfit(steps[ok], inc[ok], 1)[0] * 100) if ok.sum() >= 2 else float("nan")
        out[str(size)] = {"slope_per_100_steps": slope, "first": float(inc[0]),
                          "middle": float(inc[len(inc) // 2]), "final": float(np.nanmean(inc[w]))}
    return out


def _sizes(ds):
    return [str(s) for s in ds["size"].values]


def _colors(n):
    import matplotlib.pyplot as plt

    return [plt.cm.viridis(v) for v in np.linspace(0.0, 0.9, max(n, 1))]


def _fit(x, y):
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(y) & (y > 0)
    if np.unique(x[ok]).size < 2:
        return {"alpha": float("nan"), "prefactor": float("nan"), "r2": float("nan")}
    f = metrics.power_law_fit(x[ok], y[ok])
    return {"alpha": float(f.alpha), "prefactor": float(f.prefactor), "r2": float(f.r2)}


def _opt(settings, key):
    return (settings or {}).get(key, OPTIONS[key])


def step_norm_of(ds: xr.Dataset) -> float:
    """The teacher's step length, from the cube's recorded settings (``task_info``)."""
    try:
        return float(json.loads(ds.attrs["task_info"])["synthetic"]["step_norm"])
    except (KeyError, TypeError, ValueError):
        return 0.005


def f_values(ds: xr.Dataset, var: str = "outcome") -> xr.DataArray:
    """f(x) = 1/2 (x - b)^T A (x - b) of every iterate of ``var`` (dims of ``var`` minus
    ``coordinate``)."""
    e = ds[var] - ds["minimiser"]
    Ae = xr.dot(ds["hessian"], e.rename(coordinate="coordinate2"), dim="coordinate2")
    return 0.5 * xr.dot(e, Ae, dim="coordinate")


def tracking(ds: xr.Dataset, exit_teacher_steps: float = 10.0) -> dict[str, dict[str, float]]:
    """How long each size follows the teacher: per start, the first recorded step at which
    ``||x_t - x*_t|| > exit_teacher_steps * step_norm`` (Euclidean); per size the median over
    starts (a start that never leaves counts as the last step) and the fraction that never
    leave."""
    thr = exit_teacher_steps * step_norm_of(ds)
    steps = ds["step"].values
    out = {}
    for i, size in enumerate(ds["size"].values):
        dist = np.linalg.norm(ds["outcome"].isel(model=0, size=i, question=0).values
                              - ds["teacher"].isel(question=0).values, axis=-1)  # step, draw
        over = dist > thr
        first = np.where(over.any(0), steps[over.argmax(0)], steps[-1])
        out[str(size)] = {"median_exit_step": float(np.median(first)), "never_left": float((~over.any(0)).mean()),
                          "final_median_distance": float(np.median(dist[-1]))}
    return out


def claim_statistics(ds: xr.Dataset, settings: dict | None = None) -> dict:
    """The numbers behind the paper's synthetic claims, from one cube.

    Returns
    -------
    dict
        ``sizes``, ``params``; ``test_loss`` and its power-law ``test_loss_fit``; ``final_bias``,
        ``final_variance``, ``final_incoherence`` (final window) with ``bias_fit`` /
        ``variance_fit`` (``alpha`` of y ~ N^-alpha); ``incoherence_size_slope`` (least-squares
        slope of final incoherence against log10 parameters); ``step_slopes`` (per size, slope
        of incoherence against step per 100 steps); ``tracking`` (per size, see
        :func:`tracking`) and ``exit_size_slope`` (slope of the median exit step against log10
        parameters).
    """
    frac = _opt(settings, "final_window")
    dec = decomposition(ds)
    f = finals(ds, dec, frac)
    logn = np.log10(f["params"])
    loss = ds["test_loss"].isel(model=0).values.astype(float)

    def slope(y):
        y = np.asarray(y, float)
        ok = np.isfinite(y)
        return float(np.polyfit(logn[ok], y[ok], 1)[0]) if np.unique(logn[ok]).size >= 2 else float("nan")

    tr = tracking(ds, _opt(settings, "exit_teacher_steps"))
    sizes = _sizes(ds)
    return {"sizes": sizes, "params": f["params"].tolist(), "test_loss": loss.tolist(), "test_loss_fit": _fit(f["params"], loss),
            "final_bias": f["bias"].tolist(), "final_variance": f["variance"].tolist(),
            "final_error": f["error"].tolist(), "final_incoherence": f["incoherence"].tolist(),
            "bias_fit": _fit(f["params"], f["bias"]), "variance_fit": _fit(f["params"], f["variance"]),
            "incoherence_size_slope": slope(f["incoherence"]), "step_slopes": incoherence_slopes(ds, dec, frac),
            "tracking": tr, "exit_size_slope": slope([tr[s]["median_exit_step"] for s in sizes]),
            "final_window": frac}


# --------------------------------------------------------------------------- claims
P_STEP = "incoherence rises with rollout step for every model size"
P_SIZE = "larger models are more incoherent at the end of the rollout (final incoherence rises with size)"
P_LOSS = "test loss falls as a power law in model size"
P_BIAS = "scale reduces bias much faster than variance"
P_TRACK = "larger models follow the teacher's trajectory longer"


def claims_step(fig: str, st: dict) -> Claim:
    res = {s: (None if not np.isfinite(v["slope_per_100_steps"]) else v["slope_per_100_steps"] > 0)
           for s, v in st["step_slopes"].items()}
    detail = ", ".join(f"{s}: {v['slope_per_100_steps']:+.3f}/100 steps ({v['first']:.2f} -> {v['final']:.2f})"
                       for s, v in st["step_slopes"].items())
    return all_claim(fig, P_STEP, "least-squares slope of incoherence vs step > 0, per size", res, detail=detail)


def claims_size(fig: str, st: dict) -> Claim:
    inc = st["final_incoherence"]
    return threshold_claim(fig, P_SIZE, "slope of final incoherence vs log10(parameters) > 0",
                           st["incoherence_size_slope"], lambda v: v > 0, enough=len(inc) >= 2,
                           detail="final incoherence " + ", ".join(f"{s}: {v:.3f}" for s, v in zip(st["sizes"], inc, strict=True)))


def claims_loss(fig: str, st: dict) -> Claim:
    f = st["test_loss_fit"]
    detail = f"alpha = {f['alpha']:.3f}, R^2 = {f['r2']:.3f}; test loss " + ", ".join(
        f"{s}: {v:.4f}" for s, v in zip(st["sizes"], st["test_loss"], strict=True))
    if len(st["sizes"]) < 3 or not np.isfinite(f["alpha"]):
        return Claim(fig, P_LOSS, "power-law fit of test loss vs parameters: alpha > 0 and R^2 >= 0.8", f["alpha"],
                     NOT_ENOUGH, detail + " (needs >= 3 sizes)")
    ok = f["alpha"] > 0 and f["r2"] >= 0.8
    return Claim(fig, P_LOSS, "power-law fit of test loss vs parameters: alpha > 0 and R^2 >= 0.8", f["alpha"],
                 AGREES if ok else DISAGREES, detail)


def claims_bias(fig: str, st: dict) -> Claim:
    """Scale must *reduce* bias (alpha > 0) and faster than variance (alpha gap > 0)."""
    ab, av = st["bias_fit"]["alpha"], st["variance_fit"]["alpha"]
    detail = (f"bias alpha {ab:.3f} (R^2 {st['bias_fit']['r2']:.2f}), variance alpha {av:.3f} "
              f"(R^2 {st['variance_fit']['r2']:.2f}); value = bias alpha - variance alpha")
    return threshold_claim(fig, P_BIAS, "alpha(final bias^2) > 0 and > alpha(final variance) (y ~ N^-alpha)",
                           ab - av, lambda v: v > 0 and ab > 0, enough=len(st["sizes"]) >= 2, detail=detail)


def claims_track(fig: str, st: dict) -> Claim:
    return threshold_claim(fig, P_TRACK, "slope of the median step of leaving the teacher vs log10(parameters) > 0",
                           st["exit_size_slope"], lambda v: v > 0, enough=len(st["sizes"]) >= 2,
                           detail=", ".join(f"{s}: step {v['median_exit_step']:.0f} ({v['never_left']:.0%} never left)"
                                            for s, v in st["tracking"].items()))


def _projection(ds: xr.Dataset):
    """Eigenbasis of A (question 0): coordinates of x - b along the flattest and the steepest
    eigen-directions."""
    A = ds["hessian"].isel(question=0).values
    b = ds["minimiser"].isel(question=0).values
    w, v = np.linalg.eigh(A)
    basis = v[:, [0, -1]]
    return (lambda x: (np.asarray(x) - b) @ basis), (float(w[0]), float(w[-1]))


CAPTION_2D = ("Incoherence (variance / error in the A-norm, over start points) of the rollout iterates "
              "x_t against the optimizer step t, one line per model size; dashed: the teacher.")


@figure("fig02d", cubes=(CUBE,), title="Synthetic optimizer: incoherence vs step (Fig. 2d)", options=OPTIONS,
        variables=("outcome", "minimiser", "hessian"), caption=CAPTION_2D)
def fig02d(cubes: dict[str, xr.Dataset], settings: dict | None = None):
    import matplotlib.pyplot as plt

    ds = cubes[CUBE]
    dec = decomposition(ds)
    steps = ds["step"].values
    st = claim_statistics(ds, settings)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    lines = {}
    for i, (size, c) in enumerate(zip(_sizes(ds), _colors(ds.sizes["size"]), strict=True)):
        inc = dec["incoherence"].isel(model=0, size=i).values
        n = int(ds["params"].isel(model=0, size=i))
        ax.plot(steps, inc, color=c, label=f"{size} ({n:,} params)")
        lines[size] = {"params": n, "incoherence": inc.tolist()}
    if "teacher_incoherence" in dec:
        ax.plot(steps, dec["teacher_incoherence"].values, "k--", lw=1, label="teacher")
    if _opt(settings, "step_axis") == "log":
        ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("optimizer step t")
    ax.set_ylabel("incoherence (variance / error, A-norm)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.set_title("Synthetic optimizer: incoherence vs step")
    fig.tight_layout()
    numbers = {"step": steps.tolist(), "sizes": lines, "slopes": st["step_slopes"],
               "teacher_incoherence": dec["teacher_incoherence"].values.tolist() if "teacher_incoherence" in dec else None,
               "claims": [claims_step("fig02d", st).to_dict()]}
    return fig, numbers


@figure("fig04c", cubes=(CUBE,), title="Synthetic optimizer: final incoherence vs size (Fig. 4c)", options=OPTIONS,
        variables=("outcome", "minimiser", "hessian", "params"),
        caption="Incoherence of the final rollout points (mean over the final window of steps) against parameters.")
def fig04c(cubes: dict[str, xr.Dataset], settings: dict | None = None):
    import matplotlib.pyplot as plt

    ds = cubes[CUBE]
    st = claim_statistics(ds, settings)
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    ax.plot(st["params"], st["final_incoherence"], "o-")
    for s, x, y in zip(st["sizes"], st["params"], st["final_incoherence"], strict=True):
        ax.annotate(s, (x, y), fontsize=7, textcoords="offset points", xytext=(3, 3))
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("final incoherence")
    ax.set_ylim(0, 1.02)
    ax.set_title("Synthetic optimizer: final incoherence vs size")
    fig.tight_layout()
    return fig, {"sizes": st["sizes"], "params": st["params"], "incoherence": st["final_incoherence"],
                 "final_window": st["final_window"], "incoherence_size_slope": st["incoherence_size_slope"],
                 "claims": [claims_size("fig04c", st).to_dict()]}


def _trajectory_size(ds, settings) -> int:
    which = _opt(settings, "trajectory_size")
    sizes = _sizes(ds)
    if which == "largest":
        return int(np.argmax(ds["params"].isel(model=0).values))
    if which not in sizes:
        raise ValueError(f"figure setting trajectory_size={which!r} is not 'largest' or a size of the cube {sizes}")
    return sizes.index(which)


@figure("fig06", cubes=(CUBE,), title="Synthetic optimizer: trajectory, loss and bias/variance scaling (Fig. 6)",
        options=OPTIONS, variables=("outcome", "teacher", "minimiser", "hessian", "params", "test_loss"),
        caption="a) one rollout of a model against the teacher from the same start, projected on the flattest and "
                "steepest eigen-directions of A; b) held-out test loss vs parameters with a power-law fit; "
                "c) final bias^2 and variance vs parameters with power-law fits.")
def fig06(cubes: dict[str, xr.Dataset], settings: dict | None = None):
    import matplotlib.pyplot as plt

    ds = cubes[CUBE]
    dec = decomposition(ds)
    st = claim_statistics(ds, settings)
    params = np.asarray(st["params"])
    proj, (lmin, lmax) = _projection(ds)
    sizes = st["sizes"]
    colors = _colors(len(sizes))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    ax = axes[0]
    draw = int(_opt(settings, "trajectory_draw"))
    k = _trajectory_size(ds, settings)
    t = proj(ds["teacher"].isel(question=0, draw=draw).values)
    p = proj(ds["outcome"].isel(model=0, size=k, question=0, draw=draw).values)
    ax.plot(t[:, 0], t[:, 1], "k--", lw=1.2, label="teacher", zorder=5)
    ax.plot(p[:, 0], p[:, 1], color=colors[k], lw=1, label=f"model {sizes[k]}")
    ax.plot(p[:1, 0], p[:1, 1], "o", color="0.3", ms=4, label="start")
    ax.plot([0], [0], "r*", ms=10, label="minimiser")
    ax.set_xlabel(f"x - b along the flattest direction (eigenvalue {lmin:g})")
    ax.set_ylabel(f"along the steepest (eigenvalue {lmax:g})")
    ax.legend(fontsize=7)
    ax.set_title("a) a rollout from one start point")

    ax = axes[1]
    lfit = st["test_loss_fit"]
    ax.loglog(params, st["test_loss"], "o", color="C0")
    xx = np.geomspace(params.min(), params.max(), 50)
    if np.isfinite(lfit["alpha"]):
        ax.loglog(xx, lfit["prefactor"] * xx ** -lfit["alpha"], "-", color="C0",
                  label=f"fit: alpha={lfit['alpha']:.2f}, R²={lfit['r2']:.2f}")
        ax.legend(fontsize=7)
    ax.set_xlabel("parameters")
    ax.set_ylabel("test loss (nats / u token)")
    ax.set_title("b) test loss vs size")

    ax = axes[2]
    for key, color in (("bias", "C3"), ("variance", "C0")):
        fit = st[f"{key}_fit"]
        label = ("bias²" if key == "bias" else key) + (f": alpha={fit['alpha']:.2f}, R²={fit['r2']:.2f}"
                                                       if np.isfinite(fit["alpha"]) else "")
        ax.loglog(params, st[f"final_{key}"], "o", color=color, label=label)
        if np.isfinite(fit["alpha"]):
            ax.loglog(xx, fit["prefactor"] * xx ** -fit["alpha"], "-", color=color)
    ax.set_xlabel("parameters")
    ax.set_ylabel("final value (A-norm²)")
    ax.legend(fontsize=7)
    ax.set_title("c) final bias² and variance vs size")
    fig.tight_layout()
    # The same fits at the step where the largest model comes closest to the minimiser
    # (an extra number, not plotted: where rollouts drift away late, "final" mixes two regimes).
    err_big = dec["error"].isel(model=0, size=int(np.argmax(params))).sum("question").values
    t_star = int(np.nanargmin(err_big))
    at = dec.isel(model=0, step=t_star).sum("question")
    closest = {"step": int(ds["step"].values[t_star]), "bias": at["bias"].values.tolist(),
               "variance": at["variance"].values.tolist(), "bias_fit": _fit(params, at["bias"].values),
               "variance_fit": _fit(params, at["variance"].values)}
    numbers = {"sizes": sizes, "params": st["params"], "trajectory_draw": draw, "trajectory_size": sizes[k],
               "closest_approach": closest, "trajectory_basis_eigenvalues": [lmin, lmax],
               "trajectories": {"teacher": t.tolist(), sizes[k]: p.tolist()},
               "test_loss": st["test_loss"], "test_loss_fit": lfit,
               "final_bias": st["final_bias"], "final_variance": st["final_variance"],
               "final_error": st["final_error"], "bias_fit": st["bias_fit"], "variance_fit": st["variance_fit"],
               "final_window": st["final_window"],
               "claims": [claims_loss("fig06", st).to_dict(), claims_bias("fig06", st).to_dict(),
                          claims_size("fig06", st).to_dict()]}
    return fig, numbers


@figure("fig26", cubes=(CUBE,), title="Synthetic optimizer: loss scaling, per-step bias/variance, f(x_t) per size (Fig. 26)",
        options=OPTIONS, variables=("outcome", "teacher", "minimiser", "hessian", "params", "test_loss"),
        caption="a) test loss vs parameters; bias^2 and variance per step for each size (dashed: teacher); "
                "b-...) one fixed start point per size: f(x_t) of the model's rollout against the teacher's.")
def fig26(cubes: dict[str, xr.Dataset], settings: dict | None = None):
    import matplotlib.pyplot as plt

    ds = cubes[CUBE]
    dec = decomposition(ds)
    st = claim_statistics(ds, settings)
    sizes = st["sizes"]
    params = np.asarray(st["params"])
    colors = _colors(len(sizes))
    steps = ds["step"].values
    ncol = max(3, len(sizes))
    fig, axes = plt.subplots(2, ncol, figsize=(3.3 * ncol, 6.6), squeeze=False)
    for ax in axes[0, 3:]:
        ax.axis("off")
    ax = axes[0, 0]
    ax.loglog(params, st["test_loss"], "o", color="C0")
    lfit = st["test_loss_fit"]
    if np.isfinite(lfit["alpha"]):
        xx = np.geomspace(params.min(), params.max(), 50)
        ax.loglog(xx, lfit["prefactor"] * xx ** -lfit["alpha"], "-", color="C0",
                  label=f"alpha={lfit['alpha']:.2f}, R²={lfit['r2']:.2f}")
        ax.legend(fontsize=7)
    ax.set_xlabel("parameters")
    ax.set_ylabel("test loss (nats / u token)")
    ax.set_title("a) test loss vs size")
    per_step = {}
    for j, key in enumerate(("bias", "variance")):
        ax = axes[0, 1 + j]
        for i, (s, c) in enumerate(zip(sizes, colors, strict=True)):
            y = dec[key].isel(model=0, size=i).sum("question").values
            ax.plot(steps, y, color=c, label=s)
            per_step.setdefault(s, {})[key] = y.tolist()
        if f"teacher_{key}" in dec:
            y = dec[f"teacher_{key}"].sum("question").values
            ax.plot(steps, y, "k--", lw=1, label="teacher")
            per_step.setdefault("teacher", {})[key] = y.tolist()
        ax.set_yscale("log")
        ax.set_xlabel("optimizer step t")
        ax.set_ylabel("bias² (A-norm)" if key == "bias" else "variance (A-norm)")
        ax.set_title(f"a) {'bias²' if key == 'bias' else 'variance'} per step")
        ax.legend(fontsize=6)
    draw = int(_opt(settings, "trajectory_draw"))
    fm = f_values(ds).isel(model=0, question=0, draw=draw)
    ft = f_values(ds, "teacher").isel(question=0, draw=draw).values
    fvals = {"teacher": ft.tolist()}
    for i, (s, c) in enumerate(zip(sizes, colors, strict=True)):
        ax = axes[1, i]
        y = fm.isel(size=i).values
        ax.plot(steps, ft, "k--", lw=1, label="teacher")
        ax.plot(steps, y, color=c, lw=1, label=f"{s}")
        ax.set_yscale("log")
        ax.set_title(f"{chr(ord('b') + i)}) f(x_t), {s}", fontsize=9)
        ax.set_xlabel("optimizer step t", fontsize=8)
        if i == 0:
            ax.set_ylabel("f(x_t)", fontsize=8)
        ax.legend(fontsize=6)
        fvals[s] = y.tolist()
    for ax in axes[1, len(sizes):]:
        ax.axis("off")
    fig.tight_layout()
    tstep = ds["train_step"].values
    curves = {s: ds["test_loss_curve"].isel(model=0, size=i).values.tolist() for i, s in enumerate(sizes)}
    return fig, {"sizes": sizes, "params": st["params"], "test_loss": st["test_loss"], "test_loss_fit": lfit,
                 "train_step": tstep.tolist(), "test_loss_curves": curves, "step": steps.tolist(),
                 "per_step": per_step, "trajectory_draw": draw, "f_values": fvals, "tracking": st["tracking"],
                 "claims": [claims_loss("fig26", st).to_dict(), claims_bias("fig26", st).to_dict(),
                            claims_track("fig26", st).to_dict()]}
