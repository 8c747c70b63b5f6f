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
              help="Where PDF, PNG and JSON are written.")
@click.option("--only", multiple=True, help="Build only this figure (repeatable).")
@click.option("--n-buckets", type=int, default=None, help="Reasoning-length buckets per line (OPEN in the paper; default 5).")
def paper_cmd(results: str, out: str, only: tuple[str, ...], n_buckets: int | None) -> None:
    """Rebuild every figure whose cubes exist; say which are missing and how to produce them."""
    from pathlib import Path

    from hotmess.paper.build import build_figures

    if not Path(results).is_dir():
        raise click.ClickException(f"no results folder {results!r} (cubes live in <results>/<experiment>/cube.nc; "
                                   f"produce them with `hotmess run experiment=...` or pass --results)")
    settings = {"n_buckets": n_buckets} if n_buckets else {}
    report = build_figures(results, out, list(only) or None, settings)
    for name, path in report.built.items():
        click.echo(f"built   {name:<10} {path}")
    for name, cubes in report.missing.items():
        out_dir = "" if Path(results) == Path("results") else f" out_dir={results}"
        cmds = "; ".join(f"hotmess run experiment={c}{out_dir}" for c in cubes)
        click.echo(f"missing {name:<10} needs {', '.join(cubes)} (produce with: {cmds})")
    if not report.built:
        raise SystemExit(1)


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
