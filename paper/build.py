"""Build every figure whose cubes exist (``hotmess paper``), one figure's failure never
stopping the others.

For each figure ``<name>`` the outputs are ``<out>/<name>.pdf``, ``<out>/<name>.png`` and
``<out>/<name>.json`` (a data-only figure such as Fig. 19 writes the JSON only): the plotted
numbers, the claim rows, the settings used, and for every cube read its path, SHA-256,
experiment, hotmess version, git revision and a config summary. ``<out>/index.html`` is the
report page (:mod:`hotmess.paper.report`).

Figures come from the built-in modules of ``hotmess.paper`` (``@figure``,
:mod:`hotmess.paper.registry`) and from plugins (the ``register_figures`` hook,
:func:`hotmess.core.plugins.registrations`).

Failure isolation (``docs/science.md``, "The report page"): before a builder runs, every cube
it reads is opened (:func:`hotmess.core.cube.open_cube`), checked against the schema
(:func:`hotmess.core.schema.validate`, with the figure's ``kind``), checked to be non-empty and
to hold the experiment its folder names, and checked for the figure's variables
(:func:`hotmess.core.schema.require`). A bad cube, or a builder that raises, makes that figure
report one line (which cube, what is wrong, the command that remakes it); every other figure
is built. ``HOTMESS_DEBUG=1`` re-raises instead.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hotmess.core.cube import CUBE_FILE, CubeError, file_hash, open_cube
from hotmess.paper.registry import FIGURES, FigureSpec

#: Modules of hotmess.paper that hold no builders.
_NOT_BUILDERS = ("build", "registry", "claims", "cells", "report")


class BuildError(RuntimeError):
    """The build as a whole cannot run (unknown figure names, an unwritable output folder);
    the message is one line."""


class UnknownFigure(BuildError, KeyError):
    """``only`` names a figure that is not registered; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    """A figure to build: its spec and where it comes from (``"hotmess"`` or the plugin)."""

    spec: FigureSpec
    source: str = "hotmess"

    @property
    def builder(self) -> str:
        return self.spec.builder


@dataclass
class BuildReport:
    """What ``build_figures`` did.

    Attributes
    ----------
    built : dict
        Figure -> its PNG (or JSON for a data-only figure).
    missing : dict
        Figure -> the cubes it needs that do not exist.
    failed : dict
        Figure -> one line: what went wrong (cube, problem, command that remakes it).
    claims : dict
        Figure -> its claim rows (:meth:`hotmess.paper.claims.Claim.to_dict`).
    stamps : dict
        Figure -> the JSON written for it.
    commands : dict
        Cube -> the command that (re)makes it (for every missing or bad cube).
    index : pathlib.Path or None
        The report page.
    """

    built: dict[str, Path] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    claims: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    stamps: dict[str, dict[str, Any]] = field(default_factory=dict)
    commands: dict[str, str] = field(default_factory=dict)
    entries: dict[str, Entry] = field(default_factory=dict)
    index: Path | None = None

    @property
    def ok(self) -> bool:
        """No figure failed (missing cubes are not failures)."""
        return not self.failed


# ----------------------------------------------------------------------------- registry
def load_builders() -> dict[str, FigureSpec]:
    """Import every module of ``hotmess.paper`` so that their ``@figure`` builders register."""
    import hotmess.paper as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in _NOT_BUILDERS and not mod.name.startswith("_"):
            importlib.import_module(f"hotmess.paper.{mod.name}")
    return FIGURES


def collect_figures() -> tuple[dict[str, Entry], dict[str, str]]:
    """Built-in and plugin figures.

    Returns
    -------
    (entries, errors)
        ``entries``: figure name -> :class:`Entry`; ``errors``: figure (or plugin) name -> one
        line for a plugin figure that cannot be used (bad registration, duplicate name).
    """
    from hotmess.core import plugins

    entries = {name: Entry(spec) for name, spec in load_builders().items()}
    errors: dict[str, str] = {}
    try:
        regs = plugins.registrations("figures")
    except Exception as exc:  # a broken plugin must not stop the built-in figures
        return entries, {"plugins": f"figure plugins could not be listed: {type(exc).__name__}: {exc}"}
    for name, reg in regs.items():
        who = f"plugin {reg.plugin!r}" + (f" ({reg.distribution} {reg.version})" if reg.distribution else "")
        if name in entries:
            errors[name] = f"{who} registers figure {name!r}, which hotmess already has; rename it"
            continue
        meta = dict(reg.meta)
        cubes = meta.get("cubes")
        if not cubes or isinstance(cubes, str):
            errors[name] = f"{who} registers figure {name!r} without cubes=(...) (a tuple of experiment names)"
            continue
        if meta.get("need", "all") not in ("all", "any"):
            errors[name] = f"{who} registers figure {name!r} with need={meta['need']!r} (use 'all' or 'any')"
            continue
        spec = FigureSpec(name, tuple(cubes), reg.factory, meta.get("need", "all"),
                          meta.get("title", reg.description), dict(meta.get("options") or {}),
                          tuple(meta.get("variables") or ()), meta.get("caption", ""), meta.get("kind"),
                          dict(meta.get("option_help") or {}))
        entries[name] = Entry(spec, who)
    return entries, errors


# ----------------------------------------------------------------------------- settings
def resolve_settings(spec: FigureSpec, user: dict[str, Any] | None) -> dict[str, Any]:
    """The settings a builder receives: its declared ``options`` (defaults), overridden by the
    user's settings. A user key ``"<figure>.<option>"`` applies to that figure only (and wins
    over a plain ``"<option>"``); keys naming other figures are left out."""
    out = dict(spec.options)
    scoped = {}
    for key, value in (user or {}).items():
        fig, dot, opt = str(key).partition(".")
        if dot:
            if fig == spec.name:
                scoped[opt] = value
        else:
            out[key] = value
    out.update(scoped)
    return out


def unknown_settings(entries: dict[str, Entry], user: dict[str, Any]) -> list[str]:
    """User setting keys that no figure declares as an option (for the command line)."""
    bad = []
    for key in user:
        fig, dot, opt = str(key).partition(".")
        if dot:
            if fig not in entries or opt not in entries[fig].spec.options:
                bad.append(key)
        elif not any(key in e.spec.options for e in entries.values()):
            bad.append(key)
    return bad


def invalid_settings(entries: dict[str, Entry], user: dict[str, Any]) -> list[str]:
    """One line per user setting of a count option (declared with an integer default and a name
    ``n_*``: n_buckets, n_groups, n_boot, ...) whose value is not a positive integer."""
    bad = []
    for key, value in user.items():
        fig, dot, opt = str(key).partition(".")
        name = opt if dot else key
        specs = [entries[fig].spec] if dot and fig in entries else [e.spec for e in entries.values()]
        is_count = name.startswith("n_") and any(
            isinstance(sp.options.get(name), int) and not isinstance(sp.options.get(name), bool) for sp in specs)
        if is_count and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            bad.append(f"{key}={value!r}: a count, must be a positive integer")
    return bad


# ----------------------------------------------------------------------------- cubes
def remake_command(cube: str, results: str | Path) -> str:
    """The command that produces ``<results>/<cube>/cube.nc``."""
    out = "" if Path(results) == Path("results") else f" out_dir={results}"
    if cube in SCRIPT_CUBES:  # made by a study script, not by an experiment config
        return SCRIPT_CUBES[cube].format(results=results)
    return f"hotmess run experiment={cube}{out}"


#: Cubes made by a script rather than ``hotmess run`` (the command that makes each).
SCRIPT_CUBES = {
    "synthetic_compute": "python scripts/synthetic_study.py compute --out {results}/synthetic_compute "
                         "(then: python scripts/synthetic_study.py summary --out {results}/synthetic_compute)",
}


def config_summary(ds) -> dict[str, Any]:
    """A short summary of a cube: its dims and the main keys of its stored config."""
    import yaml

    summary: dict[str, Any] = {"dims": {str(k): int(v) for k, v in ds.sizes.items()}}
    try:
        cfg = yaml.safe_load(ds.attrs.get("config", "") or "") or {}
    except yaml.YAMLError:
        cfg = {}
    if isinstance(cfg, dict):
        for key in ("experiment", "scale", "seed", "draws", "seeds_per_context", "budgets"):
            if key in cfg:
                summary[key] = cfg[key]
        task = cfg.get("task") or cfg.get("producer")
        if isinstance(task, dict):
            summary["task"] = {k: v for k, v in task.items() if not isinstance(v, dict | list) or k == "subsets"}
        models = cfg.get("models")
        if isinstance(models, dict):
            summary["models"] = {m: sorted((v or {}).get("sizes", {}) or {}) if isinstance(v, dict) else []
                                 for m, v in models.items()}
        backend = cfg.get("backend")
        if isinstance(backend, dict):
            summary["backend"] = backend.get("name", "")
    for key in ("backend", "outcome_kind"):
        if key in ds.attrs and key not in summary:
            summary[key] = ds.attrs[key]
    return summary


class _CubeCache:
    """Open and check each cube once; keep the dataset or the problem line."""

    def __init__(self, results: Path) -> None:
        self.results = results
        self.data: dict[str, Any] = {}
        self.problem: dict[str, str] = {}
        self.info: dict[str, dict[str, Any]] = {}

    def path(self, cube: str) -> Path:
        return self.results / cube / CUBE_FILE

    def exists(self, cube: str) -> bool:
        return self.path(cube).exists()

    def get(self, cube: str):
        if cube in self.data or cube in self.problem:
            return self.data.get(cube)
        from hotmess.core import schema

        path = self.path(cube)
        try:
            ds = open_cube(path)
            ds = schema.upgrade(ds)
        except (CubeError, schema.SchemaError, OSError) as exc:
            self.problem[cube] = f"cannot be read ({_one_line(exc)})"
            return None
        problems = schema.validate(ds)
        problems += _empty_or_foreign(ds, cube)
        if problems:
            self.problem[cube] = "; ".join(problems)
            return None
        self.data[cube] = ds
        self.info[cube] = {
            "path": str(path), "sha256": file_hash(path), "experiment": str(ds.attrs.get("experiment", cube)),
            "outcome_kind": str(ds.attrs.get("outcome_kind", schema.kind_of(ds) or "")),
            "schema_version": str(ds.attrs.get("schema_version", "")),
            "hotmess_version": str(ds.attrs.get("hotmess_version", "")),
            "git_revision": str(ds.attrs.get("git_revision", "")), "created": str(ds.attrs.get("created", "")),
            "config_summary": config_summary(ds),
        }
        return ds


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _empty_or_foreign(ds, cube: str) -> list[str]:
    """Problems :func:`hotmess.core.schema.validate` does not look for: no data at all, or a
    cube whose ``experiment`` attribute names another experiment than its folder."""
    problems = []
    exp = ds.attrs.get("experiment")
    if exp is not None and str(exp) != cube:
        problems.append(f"foreign cube: its experiment attribute is {exp!r}, not {cube!r} "
                        f"(copied from another experiment's folder?)")
    empty = [d for d, n in ds.sizes.items() if n == 0]
    if empty:
        problems.append(f"empty cube: dimension(s) {empty} have length 0")
    elif "outcome" in ds and ds["outcome"].dtype.kind == "f" and not bool(ds["outcome"].notnull().any()):
        problems.append("empty cube: no draw was run (outcome is NaN everywhere)")
    elif "rank" in ds and ds["rank"].dtype.kind == "f" and not bool(ds["rank"].notnull().any()):
        problems.append("empty cube: no rank given (rank is NaN everywhere)")
    return problems


def _kind_problem(ds, spec: FigureSpec) -> str | None:
    from hotmess.core import schema

    if spec.kind is None:
        return None
    kind = schema.kind_of(ds)
    if kind != spec.kind:
        return f"foreign cube: it is of kind {kind!r}, figure {spec.name} reads kind {spec.kind!r}"
    return None


# ----------------------------------------------------------------------------- output
def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "items") and hasattr(obj, "keys"):  # omegaconf / mappings
        return _jsonable(dict(obj.items()))
    return obj


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".hotmess-write-check.", dir=out)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError as exc:
        raise BuildError(f"cannot write figures to {out}: it exists and is not a folder; pass another --out") from exc
    except OSError as exc:
        raise BuildError(f"cannot write figures to {out}: {exc.strerror or exc}; pass a writable --out") from exc


def _call(spec: FigureSpec, cubes: dict[str, Any], settings: dict[str, Any]):
    params = inspect.signature(spec.build).parameters
    positional = [p for p in params.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params.values())
    result = spec.build(cubes, settings) if varargs or len(positional) >= 2 else spec.build(cubes)
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        raise TypeError(f"builder returned {type(result).__name__}, expected (Figure or None, dict of numbers)")
    return result


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


# ----------------------------------------------------------------------------- build
def build_figures(results: str | Path, out: str | Path, only: list[str] | None = None,
                  settings: dict[str, Any] | None = None, *, index: bool = True) -> BuildReport:
    """Build the figures whose cubes exist under ``results``, each failure isolated.

    Parameters
    ----------
    results : path
        Folder holding ``<experiment>/cube.nc``.
    out : path
        Output folder for PDF, PNG, JSON and ``index.html``.
    only : list of str, optional
        Figure names to build (default: all, built-in and plugin).
    settings : dict, optional
        User settings: ``{"n_buckets": 3}`` (every figure), ``{"fig02b.n_buckets": 3}`` (one
        figure); see :func:`resolve_settings`.
    index : bool, default True
        Also write the report page ``<out>/index.html``.

    Returns
    -------
    BuildReport

    Raises
    ------
    UnknownFigure
        ``only`` names an unknown figure (the message lists the known ones).
    BuildError
        ``out`` cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    entries, plugin_errors = collect_figures()
    if only:
        unknown = [n for n in only if n not in entries and n not in plugin_errors]
        if unknown:
            raise UnknownFigure(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(sorted(entries))}")
    results, out = Path(results), Path(out)
    _check_writable(out)
    debug = os.environ.get("HOTMESS_DEBUG") == "1"
    report = BuildReport()
    cache = _CubeCache(results)
    for name, line in plugin_errors.items():
        if not only or name in only:
            report.failed[name] = line
    for name, entry in sorted(entries.items()):
        if only and name not in only:
            continue
        spec = entry.spec
        report.entries[name] = entry
        if not _SAFE_NAME.match(name):
            report.failed[name] = f"figure name {name!r} is not a plain file name ({entry.source})"
            continue
        present = [c for c in spec.cubes if cache.exists(c)]
        absent = [c for c in spec.cubes if c not in present]
        if (spec.need == "all" and absent) or not present:
            report.missing[name] = absent
            for c in absent:
                cmd = remake_command(c, results)
                if (results / c / "parts").is_dir():
                    cmd += " (part files exist: an interrupted run, which this command resumes)"
                report.commands.setdefault(c, cmd)
            continue
        problems = []
        for c in present:
            ds = cache.get(c)
            problem = cache.problem.get(c) or _kind_problem(ds, spec) or _require(ds, spec, c, results)
            if problem:
                cmd = remake_command(c, results)
                report.commands[c] = cmd
                problems.append(f"cube {c} ({cache.path(c)}): {problem}; remake it with `{cmd}`"
                                if "remake it with" not in problem else f"cube {c} ({cache.path(c)}): {problem}")
        if problems:
            if debug:
                raise BuildError(" | ".join(problems))
            report.failed[name] = " | ".join(problems)
            continue
        cubes = {c: cache.data[c] for c in present}
        used = resolve_settings(spec, settings)
        try:
            fig, numbers = _call(spec, cubes, used)
            numbers = _jsonable(numbers)
            stamp = {
                "figure": name, "title": spec.title, "caption": spec.caption, "builder": entry.builder,
                "source": entry.source, "settings": _jsonable(used),
                "options": {k: _jsonable(used.get(k, v)) for k, v in spec.options.items()},
                "variables": list(spec.variables), "kind": spec.kind, "need": spec.need,
                "cubes": {c: cache.info[c] for c in present}, "missing_cubes": absent,
                "claims": numbers.get("claims", []) if isinstance(numbers, dict) else [],
                "data": numbers,
            }
            text = json.dumps(stamp, indent=1, allow_nan=False)  # builder order kept (panel order)
            if fig is not None:
                fig.text(0.995, 0.005, " ".join(f"{c}:{cache.info[c]['sha256'][:10]}" for c in present),
                         ha="right", va="bottom", fontsize=5, color="0.5")
                fig.savefig(out / f"{name}.pdf", metadata={"Subject": json.dumps(stamp["cubes"])[:60000]})
                fig.savefig(out / f"{name}.png", dpi=150)
                plt.close(fig)
            (out / f"{name}.json").write_text(text)
        except Exception as exc:
            plt.close("all")
            if debug:
                raise
            report.failed[name] = (f"builder {entry.builder} ({entry.source}) raised {type(exc).__name__}: "
                                   f"{_one_line(exc)} (HOTMESS_DEBUG=1 shows the traceback)")
            continue
        report.stamps[name] = stamp
        report.claims[name] = stamp["claims"]
        report.built[name] = out / (f"{name}.png" if fig is not None else f"{name}.json")
    if index:
        from hotmess.paper.report import write_report

        try:
            report.index = write_report(report, out)
        except Exception as exc:
            if debug:
                raise
            report.failed["index.html"] = f"the report page could not be written: {type(exc).__name__}: {_one_line(exc)}"
    return report


def _require(ds, spec: FigureSpec, cube: str, results: Path) -> str | None:
    from hotmess.core import schema

    try:
        schema.require(ds, spec.variables, experiment=cube, command=remake_command(cube, results),
                       needed_by=f"figure {spec.name}")
    except schema.MissingVariableError as exc:
        return _one_line(exc)
    return None


# ----------------------------------------------------------------------------- text output
def describe_figures(entries: dict[str, Entry] | None = None) -> str:
    """``hotmess paper --list``: every figure with its builder, cubes, variables and options."""
    if entries is None:
        entries, errors = collect_figures()
    else:
        errors = {}
    lines = []
    for name, e in sorted(entries.items()):
        s = e.spec
        need = "all of" if s.need == "all" else "any of"
        lines.append(f"{name}  {s.title}")
        lines.append(f"    builder    {e.builder}" + ("" if e.source == "hotmess" else f"  [{e.source}]"))
        lines.append(f"    cubes      {need} {', '.join(s.cubes)}" + (f"  (kind {s.kind})" if s.kind else ""))
        lines.append(f"    variables  {', '.join(s.variables) or '(none declared)'}")
        if s.options:
            for k, v in s.options.items():
                help_ = s.option_help.get(k, "")
                lines.append(f"    option     {k}={json.dumps(_jsonable(v))}" + (f"  {help_}" if help_ else ""))
        else:
            lines.append("    options    (none)")
        if s.caption:
            lines.append(f"    caption    {s.caption}")
    for name, err in errors.items():
        lines.append(f"{name}  UNUSABLE: {err}")
    lines.append("")
    lines.append("Settings: hotmess paper --set OPTION=VALUE (every figure with that option) or "
                 "--set FIGURE.OPTION=VALUE; values are YAML (3, 0.05, [a, b], null).")
    return "\n".join(lines)


def claims_rows(report: BuildReport) -> list[dict[str, Any]]:
    """One row per claim of every built figure (a figure without claims gets one empty row)."""
    rows = []
    for name in sorted(report.built):
        claims = report.claims.get(name) or [{"figure": name, "paper": "", "measure": "(no claim recorded)",
                                              "value": None, "verdict": "", "detail": ""}]
        rows.extend({**c, "figure": name} for c in claims)
    return rows


def format_value(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def claims_table_text(report: BuildReport, width: int = 60) -> str:
    """The claims table as plain text (one line per claim)."""
    rows = claims_rows(report)
    if not rows:
        return "claims: no figure built"

    def cut(s: str, n: int) -> str:
        s = " ".join(str(s).split())
        return s if len(s) <= n else s[: n - 1] + "…"

    head = f"{'figure':<8} {'verdict':<16} {'value':<12} {'measure (paper claim)'}"
    out = ["claims:", head, "-" * len(head)]
    for r in rows:
        detail = f" [{cut(r['detail'], width)}]" if r.get("detail") else ""
        paper = f" ({cut(r['paper'], width)})" if r.get("paper") else ""
        out.append(f"{r['figure']:<8} {r['verdict'] or '-':<16} {cut(format_value(r['value']), 12):<12} "
                   f"{cut(r['measure'], width)}{paper}{detail}")
    out.append(CLAIMS_CAVEAT)
    return "\n".join(out)


#: Printed under every claims table: a verdict is a measured comparison, not a test.
CLAIMS_CAVEAT = ("verdicts compare each measured value with its stated threshold on these cubes; they are "
                 "not significance tests: a cube of a few questions or draws, or ILLUSTRATIVE data (see "
                 "each row's detail), decides nothing.")
