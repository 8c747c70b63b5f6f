"""The ``hotmess`` command line (click for the command group, Hydra for ``run``)."""

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

    from hotmess.core.hydra_app import hydra_main

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
    if not Path(results).is_dir():
        raise click.ClickException(f"no results folder {results!r} (cubes live in <results>/<experiment>/cube.nc; "
                                   f"produce them with `hotmess run experiment=...` or pass --results)")
    try:
        report = build.build_figures(results, out, list(only) or None, settings, index=not no_index)
    except build.BuildError as exc:
        raise click.ClickException(str(exc)) from exc
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
    if report.failed:
        raise SystemExit(1)
    if not report.built:
        click.echo("no figure built: no cube of any figure exists under " + results, err=True)
        raise SystemExit(1)


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
            Console().print(table)
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
    """Which of an experiment's `needs` this machine lacks (gpu, docker, network, or the
    name of an environment variable such as ANTHROPIC_API_KEY / HF_TOKEN)."""
    import os
    import shutil

    unmet = []
    for need in needs or []:
        if need == "gpu":
            try:
                import torch

                ok = torch.cuda.is_available()
            except ImportError:
                ok = False
        elif need == "docker":
            ok = shutil.which("docker") is not None
        elif need == "network":
            ok = os.environ.get("HOTMESS_OFFLINE", "") != "1"
        else:
            ok = bool(os.environ.get(need))
        if not ok:
            unmet.append(need)
    return unmet


@main.command("reproduce")
@click.option("--scale", default="cpu", show_default=True, type=click.Choice(["cpu", "paper"]))
@click.option("-e", "--experiment", "experiments", multiple=True,
              help="Experiment to run (repeatable); default: every experiment this machine can run.")
@click.option("--results", default="results", show_default=True)
@click.option("--figures", default="figures", show_default=True)
@click.argument("overrides", nargs=-1)
def reproduce_cmd(scale: str, experiments: tuple[str, ...], results: str, figures: str,
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
        click.echo(f"run     {name} (scale={scale})")
        cmd = [sys.executable, "-m", "hotmess.core.cli", "run", f"experiment={name}", f"scale={scale}",
               f"out_dir={results}", *overrides]
        if subprocess.run(cmd).returncode != 0:
            failed.append(name)
    from hotmess.paper.build import build_figures

    report = build_figures(results, figures)
    for fig, path in report.built.items():
        click.echo(f"built   {fig:<10} {path}")
    if failed:
        raise SystemExit(f"experiments failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
