"""``hotmess report``: the headline numbers of a multiple-choice cube, with bootstrap intervals.

Per group of cells (``by``: any of ``model``, ``size``, ``budget``; the cell dims not named
are pooled, their (cell, question) pairs counted as questions of the group):

- ``accuracy``: mean over questions of the per-question accuracy (mean over draws of
  ``1{argmax = target}``, ties to the lowest option; :func:`hotmess.core.metrics.accuracy`);
- ``format_error_rate``: format errors / draws run (pooled over questions and draws; null,
  shown "–", for a cube without a ``format_error`` flag, e.g. an import that does not record one);
- ``kl_bias``, ``kl_variance`` (nats, means over questions) and ``kl_incoherence`` =
  Σ variance / Σ error (:func:`~hotmess.core.metrics.kl_decomposition`,
  :func:`~hotmess.core.metrics.incoherence`); the same for ``brier_*``;
- ``zero_one_bias``, ``zero_one_variance``: means over questions of Domingos' 0/1 bias and
  variance (no 0/1 incoherence: ``docs/science.md``);
- ``questions`` (with at least one draw), ``draws`` (all draws run),
  ``draws_per_question_min`` / ``_max``; a warning when the minimum is below 30, the number
  of draws per-question estimates need (PAPER section on finite samples, Fig. 21).

Intervals: percentile bootstrap over questions (:func:`hotmess.core.metrics.bootstrap_questions`;
the same resampled questions for every metric and every group), ``n_boot`` replicates,
central ``ci`` interval, NumPy generator seeded with ``seed``. A pooled group resamples the
question ids, keeping each question's cells together.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import xarray as xr

CELL_DIMS = ("model", "size", "budget")
MIN_DRAWS = 30
#: (key, column title, units) in table order.
METRICS = (
    ("accuracy", "accuracy", "fraction"),
    ("format_error_rate", "format-error rate", "fraction"),
    ("kl_bias", "KL bias", "nats"),
    ("kl_variance", "KL variance", "nats"),
    ("kl_incoherence", "KL incoherence", "1"),
    ("brier_bias", "Brier bias", "1"),
    ("brier_variance", "Brier variance", "1"),
    ("brier_incoherence", "Brier incoherence", "1"),
    ("zero_one_bias", "0/1 bias", "fraction"),
    ("zero_one_variance", "0/1 variance", "fraction"),
)


class ReportError(ValueError):
    """The cube cannot be reported (one line: what is missing)."""


def per_question(cube: xr.Dataset) -> xr.Dataset:
    """Per-question inputs of the report, dims ``(model, size, budget, question)``.

    Raises
    ------
    ReportError
        The cube is not a multiple-choice (``probabilities``) cube or lacks ``outcome`` /
        ``target``.
    """
    from hotmess.core import metrics, schema

    kind = schema.kind_of(cube)
    if kind != "probabilities":
        raise ReportError(f"hotmess report reads multiple-choice (probabilities) cubes; this cube is "
                          f"of kind {kind!r}")
    for name in ("outcome", "target"):
        if name not in cube.variables:
            raise ReportError(f"the cube has no {name!r} variable")
    probs, target = cube["outcome"], cube["target"]
    kl = metrics.kl_decomposition(probs, target)
    br = metrics.brier_decomposition(probs, target)
    zo = metrics.zero_one_decomposition(probs, target)
    acc = metrics.accuracy(probs, target)
    ran = probs.notnull().any("option")
    if "format_error" in cube:
        fe = metrics.format_error_counts(cube["format_error"].where(ran), dim="draw")
        fe_count, fe_total = fe["count"].astype(float), fe["total"].astype(float)
    else:
        # no format_error flag recorded: the rate is unknown (n/a), not 0
        fe_count, fe_total = xr.full_like(acc, np.nan, dtype=float), ran.sum("draw").astype(float)
    q = xr.Dataset({
        "accuracy": acc, "fe_count": fe_count, "fe_total": fe_total,
        "kl_bias": kl.bias, "kl_variance": kl.variance, "kl_error": kl.error,
        "brier_bias": br.bias, "brier_variance": br.variance, "brier_error": br.error,
        "zero_one_bias": zo.bias, "zero_one_variance": zo.variance,
        "n_draws": ran.sum("draw").astype(float),
    })
    return q.drop_vars([c for c in q.coords if c not in q.dims])


def _statistic(pooled: tuple[str, ...]):
    from hotmess.core import metrics

    dims = ("question", *pooled)

    def stat(q: xr.Dataset) -> xr.Dataset:
        ran = q["n_draws"] > 0
        out = {}
        for name in ("accuracy", "kl_bias", "kl_variance", "brier_bias", "brier_variance",
                     "zero_one_bias", "zero_one_variance"):
            v = q[name].where(ran)
            out[name] = v.sum(dims, min_count=1) / v.notnull().sum(dims).where(lambda n: n > 0)
        out["format_error_rate"] = q["fe_count"].sum(dims, min_count=1) / q["fe_total"].sum(dims).where(lambda n: n > 0)
        out["kl_incoherence"] = metrics.incoherence(q["kl_variance"], q["kl_error"], dim=dims)
        out["brier_incoherence"] = metrics.incoherence(q["brier_variance"], q["brier_error"], dim=dims)
        return xr.Dataset(out)

    return stat


def _finite(x: Any) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def report(cube: xr.Dataset, *, by: tuple[str, ...] = CELL_DIMS, n_boot: int = 1000,
           ci: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """The report's numbers (module docstring) as a JSON-ready dict.

    Parameters
    ----------
    cube : xarray.Dataset
        A ``probabilities`` cube.
    by : tuple of str
        Cell dims to report separately (the others are pooled).
    n_boot : int
        Bootstrap replicates.
    ci : float
        Central interval (0.95 = 2.5th to 97.5th percentile).
    seed : int
        Seed of the bootstrap's generator.

    Returns
    -------
    dict
        ``by``, ``bootstrap`` (``n_boot``, ``ci``, ``seed``, ``method``), ``min_draws``,
        ``rows``: one per group with its labels, ``questions``, ``draws``,
        ``draws_per_question_min``/``max``, ``warnings`` and ``metrics``
        (``{key: {"value", "lower", "upper", "units"}}``, ``None`` for NaN).

    Raises
    ------
    ReportError
        Unknown ``by`` dims or a cube that cannot be reported.
    """
    from hotmess.core import metrics

    bad = [d for d in by if d not in CELL_DIMS]
    if bad:
        raise ReportError(f"--by takes {', '.join(CELL_DIMS)}; not {', '.join(bad)}")
    q = per_question(cube)
    pooled = tuple(d for d in CELL_DIMS if d not in by)
    stat = _statistic(pooled)
    boot = metrics.bootstrap_questions(q, stat, n_boot=n_boot, rng=np.random.default_rng(seed), ci=ci)
    nd = q["n_draws"]
    rows = []
    groups = [dict()] if not by else [
        dict(zip(by, combo, strict=True)) for combo in
        np.array(np.meshgrid(*[cube[d].values for d in by], indexing="ij")).reshape(len(by), -1).T]
    for labels in groups:
        sel = {k: v for k, v in labels.items()}
        cell_nd = nd.sel(sel) if sel else nd
        per_q = cell_nd.sum([d for d in pooled]) if pooled else cell_nd
        n_q = int((cell_nd > 0).sum())
        if n_q == 0:
            continue
        present = cell_nd.where(cell_nd > 0)
        row: dict[str, Any] = {k: str(v) for k, v in labels.items()}
        row.update(questions=n_q, distinct_questions=int((per_q > 0).sum()), draws=int(cell_nd.sum()),
                   draws_per_question_min=int(present.min()), draws_per_question_max=int(present.max()))
        b = boot.sel(sel) if sel else boot
        row["metrics"] = {key: {"value": _finite(b[key]), "lower": _finite(b[f"{key}_lower"]),
                                "upper": _finite(b[f"{key}_upper"]), "units": units}
                          for key, _, units in METRICS}
        warn = []
        if row["draws_per_question_min"] < MIN_DRAWS:
            warn.append(f"only {row['draws_per_question_min']} draw(s) per question (< {MIN_DRAWS}): "
                        f"per-question variance estimates are biased low and noisy")
        row["warnings"] = warn
        rows.append(row)
    return {
        "by": list(by),
        "pooled": list(pooled),
        "bootstrap": {"n_boot": n_boot, "ci": ci, "seed": seed,
                      "method": "percentile bootstrap over questions (paired across metrics)"},
        "min_draws": MIN_DRAWS,
        "rows": rows,
    }


def _fmt(m: dict[str, Any]) -> str:
    if m["value"] is None:
        return "–"
    def num(x: float) -> str:  # no "-0.000" for a rounding residue
        return f"{round(x, 3) + 0.0:.3f}"

    lo, hi = m["lower"], m["upper"]
    ci = f" [{num(lo)}, {num(hi)}]" if lo is not None and hi is not None else ""
    return f"{num(m['value'])}{ci}"


def render(rep: dict[str, Any], *, title: str = "", console=None) -> None:
    """Print the report as a rich table: one column per group, one row per metric."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    b = rep["bootstrap"]
    table = Table(title=title or None, show_lines=False)
    table.add_column("metric", style="bold")
    for row in rep["rows"]:
        head = " / ".join(row[d] for d in rep["by"]) or "all cells"
        table.add_column(head, justify="right")
    for key, name, units in METRICS:
        table.add_row(f"{name} ({units})" if units != "1" else name,
                      *[_fmt(r["metrics"][key]) for r in rep["rows"]])
    table.add_row("questions", *[str(r["questions"]) for r in rep["rows"]])
    table.add_row("draws", *[str(r["draws"]) for r in rep["rows"]])
    table.add_row("draws / question", *[
        f"{r['draws_per_question_min']}" if r["draws_per_question_min"] == r["draws_per_question_max"]
        else f"{r['draws_per_question_min']}–{r['draws_per_question_max']}" for r in rep["rows"]])
    console.print(table)
    console.print(f"intervals: {b['ci']:.0%} percentile bootstrap over questions, {b['n_boot']} "
                  f"replicates, seed {b['seed']}" + (f"; pooled over {', '.join(rep['pooled'])}"
                                                      if rep["pooled"] else ""))
    for r in rep["rows"]:
        head = " / ".join(r[d] for d in rep["by"]) or "all cells"
        for w in r["warnings"]:
            console.print(f"[yellow]warning[/yellow] {head}: {w}")


def to_json(rep: dict[str, Any]) -> str:
    """The report as JSON text (NaN written as null)."""
    return json.dumps(rep, indent=2, sort_keys=False)
