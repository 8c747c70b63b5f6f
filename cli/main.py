"""The ``hotmess`` command line (click for the command group, Hydra for ``run``).

The application layer: it sits above :mod:`hotmess.core` (the engine, plugins, the cube) and
:mod:`hotmess.paper` (the figures) and is the only place that imports both; core imports
neither this package nor paper nor the plugins (``docs/design.md``, "Layout and data flow").
"""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hotmess")
def main() -> None:
    """hotmess: measure how incoherent a model's errors are (arXiv 2601.23045)."""


@main.command("plugins")
def plugins_cmd() -> None:
    """List installed plugins and what each registers, with versions."""
    from hotmess.core import plugins

    for kind in plugins.KINDS:
        regs = plugins.registrations(kind)
        click.echo(f"{kind}:")
        for name, reg in sorted(regs.items()):
            ver = f"{reg.distribution} {reg.version}".strip()
            click.echo(f"  {name:<12} {reg.plugin:<12} {ver:<22} {reg.description}")
    for name, err in plugins.failed_plugins().items():
        click.echo(f"failed to load plugin {name!r}: {err}", err=True)


@main.command(
    "run",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def run_cmd(overrides: tuple[str, ...]) -> None:
    """Run an experiment: hotmess run [experiment=NAME] [key=value ...] [-m]  (Hydra syntax;
    `hotmess run --help` shows the config)."""
    import sys

    from hotmess.core.cube import CubeWriteError, check_writable
    from hotmess.core.hydra_app import hydra_main

    # Hydra creates its output folder under out_dir before any hotmess code runs: check it
    # first, so that a read-only or wrong out_dir is one line, not Hydra's traceback
    given = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("out_dir=")]
    out_dir = given[-1] if given else "results"  # the last one wins, as in Hydra
    if "--help" not in overrides and "-h" not in overrides:
        try:
            check_writable(out_dir)
        except CubeWriteError as exc:
            click.echo(f"hotmess run: error: out_dir: {exc}", err=True)
            sys.exit(2)
    sys.argv = ["hotmess run", *overrides]
    hydra_main()


@main.command("paper")
@click.option("--results", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Folder holding <experiment>/cube.nc.")
@click.option("--out", default="figures", show_default=True, type=click.Path(file_okay=False),
              help="Where PDF, PNG, JSON and index.html are written.")
@click.option("--only", multiple=True, help="Build only this figure (repeatable; see --list).")
@click.option("--set", "sets", multiple=True, metavar="[FIGURE.]OPTION=VALUE",
              help="Override a figure option (YAML value; repeatable; --list shows the options).")
@click.option("--n-buckets", type=int, default=None, help="Shorthand for --set n_buckets=N (OPEN in the paper).")
@click.option("--list", "list_", is_flag=True, help="List every figure: builder, cubes, variables, options; build nothing.")
@click.option("--no-index", is_flag=True, help="Do not write index.html.")
def paper_cmd(results: str, out: str, only: tuple[str, ...], sets: tuple[str, ...], n_buckets: int | None,
              list_: bool, no_index: bool) -> None:
    """Rebuild every figure whose cubes exist, and the report page index.html; say which are
    missing and how to produce them. Exit 1 if any figure failed (a bad cube, a builder error)."""
    from pathlib import Path

    import yaml

    from hotmess.paper import build

    if list_:
        click.echo(build.describe_figures())
        return
    settings = {}
    for item in sets:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise click.UsageError(f"--set {item!r}: expected OPTION=VALUE or FIGURE.OPTION=VALUE")
        try:
            settings[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            raise click.UsageError(f"--set {item!r}: the value is not YAML ({exc.problem})") from exc
    if n_buckets:
        settings.setdefault("n_buckets", n_buckets)
    entries, _ = build.collect_figures()
    unknown = [n for n in only if n not in entries]
    if unknown:
        raise click.UsageError(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(sorted(entries))}")
    bad = build.unknown_settings(entries, settings)
    if bad:
        known = sorted({k for e in entries.values() for k in e.spec.options})
        raise click.UsageError(f"no figure has the option(s) {', '.join(bad)}; options: {', '.join(known)} "
                               f"(hotmess paper --list shows them per figure)")
    bad = build.invalid_settings(entries, settings)
    if bad:
        raise click.UsageError("; ".join(bad))
    if not Path(results).is_dir():
        raise click.ClickException(f"no results folder {results!r} (cubes live in <results>/<experiment>/cube.nc; "
                                   f"produce them with `hotmess run experiment=...` or pass --results)")
    try:
        report = build.build_figures(results, out, list(only) or None, settings, index=not no_index)
    except build.BuildError as exc:
        raise click.ClickException(str(exc)) from exc
    if not _print_report(report, results):
        raise SystemExit(1)


def _print_report(report, results: str) -> bool:
    """Print what ``build_figures`` did (built, missing with the producing command, failed, the
    report page, the claims table); True if nothing failed and something was built."""
    for name, path in report.built.items():
        click.echo(f"built   {name:<10} {path}")
    for name, cubes in report.missing.items():
        cmds = "; ".join(report.commands[c] for c in cubes)
        need = "one of" if report.entries[name].spec.need == "any" and len(cubes) > 1 else ""
        click.echo(f"missing {name:<10} needs {need + ' ' if need else ''}{', '.join(cubes)} (produce with: {cmds})")
    for name, line in report.failed.items():
        click.echo(f"failed  {name:<10} {line}", err=True)
    if report.index:
        click.echo(f"report  {report.index}")
    _print_claims(report)
    if not report.built:
        click.echo("no figure built: no cube of any figure exists under " + results, err=True)
    return not report.failed and bool(report.built)


def _print_claims(report) -> None:
    """The claims table: rich when writing to a terminal and rich is installed, else plain."""
    import sys

    from hotmess.paper import build

    rows = build.claims_rows(report)
    if sys.stdout.isatty() and rows:
        try:
            from rich.console import Console
            from rich.table import Table
        except ImportError:
            pass
        else:
            table = Table(title="claims")
            for col in ("figure", "verdict", "value", "measure", "paper claim"):
                table.add_column(col, overflow="fold")
            style = {"agrees": "green", "disagrees": "red", "not enough data": "yellow"}
            for r in rows:
                table.add_row(r["figure"], f"[{style.get(r['verdict'], 'white')}]{r['verdict'] or '-'}[/]",
                              build.format_value(r["value"]), r["measure"], r["paper"])
            console = Console()
            console.print(table)
            console.print(build.CLAIMS_CAVEAT)
            return
    click.echo(build.claims_table_text(report))


@main.command("experiments")
def experiments_cmd() -> None:
    """List the experiment configs, with what each needs (GPU, API key, Docker)."""
    from pathlib import Path

    import yaml

    from hotmess.core.hydra_app import CONF_DIR

    for path in sorted((Path(CONF_DIR) / "experiment").glob("*.yaml")):
        data = yaml.safe_load(path.read_text()) or {}
        needs = ", ".join(data.get("needs") or []) or "CPU only"
        click.echo(f"{path.stem:<22} [{needs}]  {data.get('description', '')}")


def _unmet_needs(needs: list[str]) -> list[str]:
    from hotmess.core.needs import unmet_needs

    return unmet_needs(needs)


@main.command("schema")
def schema_cmd() -> None:
    """Print the cube schema (every dimension, coordinate and data variable) as Markdown."""
    from hotmess.core import schema

    click.echo(f"schema_version {schema.SCHEMA_VERSION}\n")
    click.echo(schema.describe())


@main.command("reproduce")
@click.option("--scale", default="cpu", show_default=True, type=click.Choice(["cpu", "paper"]))
@click.option("-e", "--experiment", "experiments", multiple=True,
              help="Experiment to run (repeatable); default: every experiment this machine can run.")
@click.option("--results", default="results", show_default=True)
@click.option("--figures", default="figures", show_default=True)
@click.option("--data", default=None, type=click.Path(file_okay=False, exists=True),
              help="A local data folder (the shared layout: mmlu/, gpqa/, mwe/...): each experiment "
                   "whose task reads data gets task.data_dir=<its subfolder> (no hub needed).")
@click.argument("overrides", nargs=-1)
def reproduce_cmd(scale: str, experiments: tuple[str, ...], results: str, figures: str, data: str | None,
                  overrides: tuple[str, ...]) -> None:
    """Run the paper's experiments (those whose needs are met), then rebuild the figures.
    Extra OVERRIDES (key=value) are passed to every run."""
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    from hotmess.core.hydra_app import CONF_DIR

    available = {p.stem: yaml.safe_load(p.read_text()) or {}
                 for p in sorted((Path(CONF_DIR) / "experiment").glob("*.yaml"))}
    chosen = list(experiments) or [n for n in available if n != "cpu_demo" or scale == "cpu"]
    failed = []
    for name in chosen:
        if name not in available:
            raise click.BadParameter(f"unknown experiment {name!r}; known: {', '.join(available)}")
        unmet = _unmet_needs(available[name].get("needs") or [])
        if unmet:
            click.echo(f"skip    {name}: needs {', '.join(unmet)}")
            continue
        extra = []
        if data is not None:
            sub = DATA_SUBDIRS.get(_task_of(available[name]) or "")
            if sub and (Path(data) / sub).is_dir():
                extra = [f"task.data_dir={(Path(data) / sub).resolve()}"]
        click.echo(f"run     {name} (scale={scale}){' ' + extra[0] if extra else ''}")
        cmd = [sys.executable, "-m", "hotmess.cli", "run", f"experiment={name}", f"scale={scale}",
               f"out_dir={results}", *extra, *overrides]
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
    from hotmess.paper.build import build_figures

    ok = _print_report(build_figures(results, figures), results)
    if failed:
        raise SystemExit(f"experiments failed: {', '.join(failed)}")
    if not ok:
        raise SystemExit(1)


#: Where each task's local data lies below ``hotmess reproduce --data DIR`` (the layout of the
#: shared data folder: DIR/mmlu, DIR/gpqa, DIR/mwe/advanced-ai-risk/human_generated_evals).
DATA_SUBDIRS = {"mmlu": "mmlu", "gpqa": "gpqa", "mwe_mc": "mwe/advanced-ai-risk/human_generated_evals",
                "mwe_open": "mwe/advanced-ai-risk/human_generated_evals"}


def _task_of(experiment: dict) -> str | None:
    """The task an experiment config selects (``override /task: NAME``; default mmlu), or
    ``None`` for an experiment made by a producer."""
    groups = {}
    for entry in experiment.get("defaults") or []:
        if isinstance(entry, dict):
            groups.update({k.replace("override ", "").strip(): v for k, v in entry.items()})
    if groups.get("/producer"):
        return None
    return str(groups.get("/task") or "mmlu")



@main.command("status")
@click.argument("target", required=False)
@click.option("--out-dir", default="results", show_default=True, type=click.Path(file_okay=False),
              help="Where experiment folders live (for TARGET given as an experiment name).")
def status_cmd(target: str | None, out_dir: str) -> None:
    """Per (model, size, budget) cell of a cube directory: draws done / expected, parts
    written, last write time, chunks being sampled by live runs, and the command that
    completes what is missing. TARGET: an experiment name (under --out-dir) or a folder;
    default: every experiment under --out-dir."""
    from pathlib import Path

    from hotmess.core.status import PLAN_FILE, cell_status

    if target is None:
        roots = sorted(p.parent for p in Path(out_dir).glob(f"**/{PLAN_FILE}"))
        if not roots:
            raise click.ClickException(f"no experiment folder with a {PLAN_FILE} under {out_dir!r}")
    else:
        roots = [Path(target) if Path(target).is_dir() else Path(out_dir) / target]
    for root in roots:
        try:
            cells, plan = cell_status(root)
        except FileNotFoundError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{root}  (plan updated {plan.get('updated', '?')})")
        head = f"  {'cell':<40} {'draws done/expected':>20} {'parts':>9} {'sampling now':>12}  last write"
        click.echo(head)
        for c in cells:
            click.echo(f"  {c.cell:<40} {f'{c.draws_done}/{c.draws_expected}':>20} "
                       f"{f'{c.parts_done}/{c.parts_expected}':>9} {c.claimed:>12}  {c.last_write or '-'}")
        done = sum(c.draws_done for c in cells)
        expected = sum(c.draws_expected for c in cells)
        click.echo(f"  total: {done}/{expected} draws" + ("" if expected else " (empty plan)"))
        for run in plan.get("live_runs", []):
            click.echo(f"  live run: {run}")
        if done < expected:
            click.echo(f"  to complete: {plan.get('command', 'hotmess run ...')}")
        else:
            click.echo("  complete" + ("" if (root / "cube.nc").exists() else
                                       f" (no cube.nc yet: {plan.get('command', 'hotmess run ...')})"))


# --- hotmess import / hotmess report (plugins/importers/cli.py; imported on first use)
class _LazyGroup(click.Group):
    def get_command(self, ctx, name):
        from hotmess.plugins.importers import cli as importers_cli

        return importers_cli.import_cmd.get_command(ctx, name)

    def list_commands(self, ctx):
        from hotmess.plugins.importers import cli as importers_cli

        return importers_cli.import_cmd.list_commands(ctx)


main.add_command(_LazyGroup("import", help="Make a cube from samples another tool wrote "
                            "(lm-eval, Inspect, a long table)."))


@main.command("report", context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                          "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def report_cmd(args: tuple[str, ...]) -> None:
    """Accuracy, format errors, bias/variance/incoherence of a cube, with bootstrap intervals
    (hotmess report CUBE [--by model,size,budget] [--json]; --help for all options)."""
    from hotmess.plugins.importers.cli import report_cmd as real

    real.main(list(args), prog_name="hotmess report", standalone_mode=True)


if __name__ == "__main__":
    main()
