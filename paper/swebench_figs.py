"""SWE-bench figures: Fig. 2b, 3b, 17b and 25 (``docs/science.md``,
"Figures: SWE-bench, model-written evals, survey, transcripts, report page").

Every number comes from :func:`hotmess.core.metrics.coverage_error` on the cube's per-test
pass/fail ``outcome(model, size, budget, question, draw, test)``: per task, BIAS² =
(1/T) Σ_j (1 − ȳ_j)², VARIANCE = (1/(R T)) Σ_r Σ_j (y_rj − ȳ_j)², ERROR = their sum, and
the score = the share of runs in which every test passes. Coverage incoherence of a set of
tasks = Σ VARIANCE / Σ ERROR (:func:`hotmess.core.metrics.incoherence`).

- Fig. 2b: tasks in equal-size buckets by their mean number of ``actions``
  (:func:`hotmess.core.metrics.length_buckets`); incoherence per bucket against the bucket's
  mean actions; one line per (model, size, budget).
- Fig. 3b and 17b: each task's runs split at that task's median number of actions
  (:func:`hotmess.core.metrics.median_split`: below vs at/above the median); score and
  coverage incoherence of the pooled short halves and of the pooled long halves.
- Fig. 25: Fig. 2b's buckets against three lengths (actions, total output tokens,
  reasoning tokens); rows incoherence, score, coverage error, bias² and variance.
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from hotmess.core import metrics
from hotmess.paper.cells import bucketed, cells, floats, line_label, rises
from hotmess.paper.claims import all_claim
from hotmess.paper.registry import figure

CUBES = ("swebench_frontier", "swebench_probe")
BUCKET_OPTIONS = {"n_buckets": 5}
BUCKET_HELP = {"n_buckets": "tasks per line are cut into this many equal-size buckets by mean "
                            "length (OPEN in the paper)"}
LENGTHS = ("actions", "output_tokens", "reasoning_tokens")
LENGTH_LABELS = {"actions": "mean number of actions", "output_tokens": "mean output tokens",
                 "reasoning_tokens": "mean reasoning tokens"}


def passes(cell: xr.Dataset) -> xr.DataArray:
    """The cell's per-test pass/fail ``outcome`` without its non-index coordinates (the cube's
    ``n_tests`` coordinate would clash with the ``n_tests`` that coverage_error returns)."""
    return cell["outcome"].reset_coords(drop=True)


def bucket_lines(cubes: dict[str, xr.Dataset], length: str, n_buckets: int) -> list[dict[str, Any]]:
    """One entry per run cell: coverage-error numbers per bucket of tasks by mean ``length``.

    Returns
    -------
    list of dict
        ``cube, model, size, budget, label, length`` and the keys of
        :func:`hotmess.paper.cells.bucketed` (``x`` = mean ``length`` of the bucket's tasks;
        ``incoherence``, ``error``, ``bias``, ``variance``, ``score``); cells whose
        ``length`` is unknown everywhere (e.g. reasoning tokens no model reported) are
        listed with ``x = []`` and a ``note``.
    """
    out = []
    for cube, ds in cubes.items():
        for model, size, budget, cell in cells(ds):
            ce = metrics.coverage_error(passes(cell))
            row = {"cube": cube, "model": model, "size": size, "budget": budget, "length": length,
                   "label": line_label(cube, model, size, budget, len(cubes))}
            nums = bucketed(ce["variance"], ce["error"], cell[length], n_buckets, bias=ce["bias"],
                            extra={"score": ce["resolved"]})
            if nums is None:
                row.update(x=[], note=f"no task has a known {length} (all NaN)")
            else:
                row.update(nums)
            out.append(row)
    return out


def halves(cubes: dict[str, xr.Dataset], length: str = "actions") -> list[dict[str, Any]]:
    """Score and coverage incoherence of the short and long halves of each task's runs.

    Returns
    -------
    list of dict
        Per run cell: ``cube, model, size, budget, label`` and ``short`` / ``long``, each with
        ``score`` (mean over tasks of the share of runs with every test passing),
        ``incoherence`` (Σ variance / Σ error over tasks), ``length`` (mean ``length`` of the
        half's runs), ``n_tasks`` (tasks with at least one run in the half), ``n_runs``.
    """
    out = []
    for cube, ds in cubes.items():
        for model, size, budget, cell in cells(ds):
            runs_len = cell[length].reset_coords(drop=True)
            short, long_ = metrics.median_split(runs_len)
            row: dict[str, Any] = {"cube": cube, "model": model, "size": size, "budget": budget,
                                   "label": line_label(cube, model, size, budget, len(cubes))}
            for name, mask in (("short", short), ("long", long_)):
                ce = metrics.coverage_error(passes(cell).where(mask))
                ok = ce["n_draws"] > 0
                row[name] = {
                    "score": floats([ce["resolved"].where(ok).mean("question", skipna=True)])[0],
                    "incoherence": floats([metrics.incoherence(ce["variance"], ce["error"])])[0],
                    "length": floats([runs_len.where(mask).mean(skipna=True)])[0],
                    "n_tasks": int(ok.sum()),
                    "n_runs": int(mask.sum()),
                }
            out.append(row)
    return out


def _bars(ax, rows: list[dict[str, Any]], key: str, ylabel: str) -> None:
    import numpy as np

    x = np.arange(len(rows))
    for j, (half, color) in enumerate((("short", "tab:blue"), ("long", "tab:red"))):
        vals = [np.nan if r[half][key] is None else r[half][key] for r in rows]
        ax.bar(x + (j - 0.5) * 0.38, vals, 0.38, color=color,
               label="below median #actions" if half == "short" else "at/above median #actions")
    ax.set_xticks(x, [r["label"] for r in rows], rotation=20, ha="right", fontsize=7)
    if not any(r[h][key] is not None for r in rows for h in ("short", "long")):
        ax.text(0.5, 0.5, "no task has runs on both sides of its median\n(e.g. every run took the same "
                "number of actions)", ha="center", va="center", transform=ax.transAxes, fontsize=8, color="0.4")
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)


def _split_claim(fig: str, rows: list[dict[str, Any]], tolerance: float | None) -> dict[str, Any]:
    res: dict[str, bool | None] = {}
    for r in rows:
        si, li = r["short"]["incoherence"], r["long"]["incoherence"]
        if si is None or li is None:
            res[r["label"]] = None
            continue
        ok = li > si
        if tolerance is not None:
            ss, ls = r["short"]["score"], r["long"]["score"]
            ok = ok and ss is not None and ls is not None and abs(ls - ss) <= tolerance
        res[r["label"]] = ok
    if tolerance is None:
        return all_claim(fig, "per task, the runs at/above the median number of actions have "
                         "substantially higher coverage incoherence than the runs below it",
                         "long-half coverage incoherence > short-half, every line", res).to_dict()
    return all_claim(fig, "on SWE-bench, more actions barely change the score but raise "
                     "incoherence markedly",
                     f"long-half incoherence > short-half and |score difference| <= {tolerance}, "
                     "every line", res).to_dict()


_SPLIT_CAPTION = ("Each task's runs split at that task's median number of actions (below vs "
                  "at/above); score and coverage incoherence of the pooled halves, per model.")


@figure("fig03b", cubes=CUBES, need="any", kind="tests", variables=("outcome", "actions"),
        title="SWE-bench natural overthinking: score and coverage incoherence below vs at/above "
              "the median number of actions (Fig. 3b)", caption=_SPLIT_CAPTION)
def fig03b(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    """Fig. 3b: two bar panels (score, coverage incoherence). Returns ``(Figure, {"lines":
    halves(cubes), "claims"})``."""
    import matplotlib.pyplot as plt

    rows = halves(cubes)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.6))
    _bars(axes[0], rows, "score", "score (all tests pass)")
    _bars(axes[1], rows, "incoherence", "coverage incoherence")
    axes[1].legend(fontsize=7)
    fig.suptitle("SWE-bench: short vs long runs per task", fontsize=9)
    fig.tight_layout()
    return fig, {"lines": rows, "claims": [_split_claim("fig03b", rows, None)]}


@figure("fig17b", cubes=CUBES, need="any", kind="tests", variables=("outcome", "actions"),
        options={"similar_score": 0.05},
        option_help={"similar_score": "largest |score(long) - score(short)| that counts as "
                                      "'barely changes the score' (our reading; the paper gives none)"},
        title="SWE-bench: score (top) and coverage incoherence (bottom), below vs at/above the "
              "median number of actions (Fig. 17b)", caption=_SPLIT_CAPTION)
def fig17b(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    """Fig. 17b: score (top) and incoherence (bottom) per model. Returns ``(Figure,
    {"lines", "similar_score", "claims"})``."""
    import matplotlib.pyplot as plt

    tol = float(settings.get("similar_score", 0.05))
    rows = halves(cubes)
    fig, axes = plt.subplots(2, 1, figsize=(5.5, 6), sharex=True)
    _bars(axes[0], rows, "score", "score")
    _bars(axes[1], rows, "incoherence", "coverage incoherence")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig, {"lines": rows, "similar_score": tol, "claims": [_split_claim("fig17b", rows, tol)]}


@figure("fig02b", cubes=CUBES, need="any", kind="tests", variables=("outcome", "actions"),
        options=BUCKET_OPTIONS, option_help=BUCKET_HELP,
        title="SWE-bench: coverage incoherence vs number of actions (Fig. 2b)",
        caption="Tasks cut into equal-size buckets by their mean number of actions over the runs; "
                "coverage incoherence (Σ variance / Σ coverage error) per bucket, one line per model.")
def fig02b(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    """Fig. 2b. Returns ``(Figure, {"n_buckets", "lines": bucket_lines(..., "actions"),
    "claims"})``."""
    import matplotlib.pyplot as plt

    n = int(settings.get("n_buckets", 5))
    rows = bucket_lines(cubes, "actions", n)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in rows:
        if r["x"]:
            ax.plot(r["x"], r["incoherence"], marker="o", label=r["label"])
    ax.set_xlabel("mean number of actions (bucket)")
    ax.set_ylabel("coverage incoherence")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("SWE-bench: incoherence vs actions", fontsize=9)
    fig.tight_layout()
    claim = all_claim("fig02b", "incoherence rises with the number of actions (for every model)",
                      "coverage incoherence of the longest bucket > the shortest, every line",
                      {r["label"]: rises(r["x"], r.get("incoherence", [])) for r in rows})
    return fig, {"n_buckets": n, "lines": rows, "claims": [claim.to_dict()]}


ROWS = (("incoherence", "coverage incoherence"), ("score", "score"), ("error", "coverage error"),
        ("bias", "bias²"), ("variance", "variance"))


@figure("fig25", cubes=CUBES, need="any", kind="tests",
        variables=("outcome", "actions", "output_tokens", "reasoning_tokens"),
        options=BUCKET_OPTIONS, option_help=BUCKET_HELP,
        title="SWE-bench against actions, output tokens and reasoning tokens: incoherence, score, "
              "coverage error, bias² and variance (Fig. 25)",
        caption="Columns: tasks bucketed by mean number of actions, total output tokens and "
                "reasoning tokens; rows: coverage incoherence, score, coverage error, bias² and "
                "variance per bucket (means over the bucket's tasks).")
def fig25(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    """Fig. 25. Returns ``(Figure, {"n_buckets", "columns": {length: bucket_lines(...)},
    "claims"})``."""
    import matplotlib.pyplot as plt

    n = int(settings.get("n_buckets", 5))
    columns = {length: bucket_lines(cubes, length, n) for length in LENGTHS}
    fig, axes = plt.subplots(len(ROWS), len(LENGTHS), figsize=(11, 12), squeeze=False)
    for j, length in enumerate(LENGTHS):
        for i, (key, ylabel) in enumerate(ROWS):
            ax = axes[i][j]
            for r in columns[length]:
                if r["x"]:
                    ax.plot(r["x"], [float("nan") if v is None else v for v in r[key]], marker="o",
                            label=r["label"])
            if not any(r["x"] for r in columns[length]):
                ax.text(0.5, 0.5, f"no {length} in the cube", ha="center", va="center",
                        transform=ax.transAxes, fontsize=8, color="0.4")
            ax.set_ylabel(ylabel, fontsize=8)
            ax.grid(alpha=0.3)
            if i == len(ROWS) - 1:
                ax.set_xlabel(LENGTH_LABELS[length] + " (bucket)", fontsize=8)
    axes[0][0].legend(fontsize=6)
    fig.tight_layout()
    res = {f"{r['label']} vs {length}": rises(r["x"], r.get("incoherence", []))
           for length, rows in columns.items() for r in rows}
    claim = all_claim("fig25", "the SWE-bench trends hold whether x is actions, output tokens or "
                      "reasoning tokens (incoherence rises)",
                      "coverage incoherence of the longest bucket > the shortest, every line and length",
                      res)
    return fig, {"n_buckets": n, "columns": columns, "claims": [claim.to_dict()]}
