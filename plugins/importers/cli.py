"""Click commands ``hotmess import lm-eval|inspect|table`` and ``hotmess report``.

``core/cli.py`` adds :data:`import_cmd` and :data:`report_cmd` to the ``hotmess`` group.
Every error of the input is one line (``HOTMESS_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import click

_CELL_OPTIONS = [
    click.option("--model", "model", default=None, help="Model label (default: from the files)."),
    click.option("--size", default="-", show_default=True, help="Size label."),
    click.option("--params", type=float, default=math.nan, help="Parameter count (default: from the files)."),
    click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
                 help="Cube to write (merged with a cube already there). Default: results/<tool>/cube.nc."),
    click.option("--replace", is_flag=True, help="Overwrite the cube instead of merging with it."),
]


def _cell_options(fn):
    for opt in reversed(_CELL_OPTIONS):
        fn = opt(fn)
    return fn


def _write(ds, out: str | None, default: str, replace: bool) -> None:
    from hotmess.plugins.importers.common import write_cube

    path = Path(out or default)
    ds = write_cube(ds, path, merge_existing=not replace)
    dims = ", ".join(f"{d}={n}" for d, n in ds.sizes.items())
    ran = ds["outcome"].notnull().any(ds["outcome"].dims[-1]).sum().item()
    click.echo(f"wrote {path}  ({dims}; {ran} draws; kind {ds.attrs.get('outcome_kind')})")


def _guard(fn, *args, **kwargs):
    from hotmess.plugins.importers.common import ImportFailure
    from hotmess.plugins.importers.report import ReportError

    try:
        return fn(*args, **kwargs)
    except (ImportFailure, ReportError) as exc:
        if os.environ.get("HOTMESS_DEBUG") == "1":
            raise
        raise click.ClickException(str(exc)) from None


@click.group("import", context_settings={"help_option_names": ["-h", "--help"]})
def import_cmd() -> None:
    """Make a cube from samples another tool wrote (lm-eval, Inspect, a long table)."""


@import_cmd.command("lm-eval")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=False))
@_cell_options
@click.option("--budget", default="none", show_default=True, help="Budget label.")
@click.option("--length-norm", is_flag=True,
              help="Log-likelihood tasks: divide by the option's length in characters (acc_norm).")
def lm_eval_cmd(paths, model, size, params, out, replace, budget, length_norm) -> None:
    """lm-evaluation-harness --log_samples output: samples_<task>_<date>.jsonl files or folders."""
    from hotmess.plugins.importers.lm_eval import import_lm_eval

    ds = _guard(import_lm_eval, list(paths), model=model, size=size, budget=budget, params=params,
                length_norm=length_norm)
    _guard(_write, ds, out, "results/lm_eval/cube.nc", replace)


@import_cmd.command("inspect")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=False))
@_cell_options
@click.option("--budget", default=None, help="Budget label (default: the log's reasoning_tokens, else none).")
@click.option("--answer-from", type=click.Choice(["scorer", "completion"]), default="scorer", show_default=True,
              help="Take the scorer's answer (re-parse the completion where it gives none) or always re-parse.")
@click.option("--scorer", default=None, help="Score to read (default: the first).")
def inspect_cmd(paths, model, size, params, out, replace, budget, answer_from, scorer) -> None:
    """Inspect eval logs (.eval or .json): epochs are draws, sample ids are questions."""
    from hotmess.plugins.importers.inspect_log import import_inspect

    ds = _guard(import_inspect, list(paths), model=model, size=size, budget=budget, params=params,
                answer_from=answer_from, scorer=scorer)
    _guard(_write, ds, out, "results/inspect/cube.nc", replace)


@import_cmd.command("table")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=False))
@click.option("-o", "--out", type=click.Path(dir_okay=False), default=None,
              help="Cube to write (merged with a cube already there). Default: results/table/cube.nc.")
@click.option("--replace", is_flag=True, help="Overwrite the cube instead of merging with it.")
@click.option("--options", "n_options", type=int, default=None,
              help="Option count of every question (answer tables without an n_options column).")
def table_cmd(paths, out, replace, n_options) -> None:
    """A long table (CSV, JSONL, Parquet): one row per draw (model, question, draw, target,
    answer or p_<label>; format in `hotmess.plugins.importers.table`)."""
    from hotmess.plugins.importers.table import import_table

    ds = _guard(import_table, list(paths), options=n_options)
    _guard(_write, ds, out, "results/table/cube.nc", replace)


@click.command("report", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("cube", type=click.Path(dir_okay=False))
@click.option("--by", default="model,size,budget", show_default=True,
              help="Cell dims reported separately (comma-separated; the others are pooled; '' pools all).")
@click.option("--json", "as_json", is_flag=True, help="Write the numbers as JSON instead of the table.")
@click.option("--n-boot", type=int, default=1000, show_default=True, help="Bootstrap replicates.")
@click.option("--ci", type=float, default=0.95, show_default=True, help="Central interval.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
def report_cmd(cube, by, as_json, n_boot, ci, seed) -> None:
    """Accuracy, format errors, KL/Brier bias, variance, incoherence and 0/1 bias/variance of a
    multiple-choice cube, with bootstrap intervals over questions."""
    from hotmess.core.cube import CubeError, open_cube
    from hotmess.plugins.importers.report import render, report, to_json

    try:
        ds = open_cube(cube)
    except CubeError as exc:
        raise click.ClickException(str(exc)) from None
    dims = tuple(d.strip() for d in by.split(",") if d.strip())
    rep = _guard(report, ds, by=dims, n_boot=n_boot, ci=ci, seed=seed)
    rep["cube"] = str(cube)
    if as_json:
        click.echo(to_json(rep))
    else:
        render(rep, title=str(cube))
