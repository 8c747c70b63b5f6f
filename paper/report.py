"""The report page ``figures/index.html``: the whole reproduction on one self-contained page.

Rendered with Jinja2 from ``templates/report.html.j2`` (autoescaped). It needs no server and
no network: the PNGs are embedded as ``data:`` URIs, the style and the small viewer script
are inline, and the links to the PDF / PNG / JSON files are relative (they sit next to the
page). Sections (``docs/science.md``, "The report page"):

- the claims table (one row per claim of every built figure: paper claim, measure, measured
  value, verdict);
- figures that failed (one line each) and missing figures with the command that produces
  each cube;
- every built figure: image, caption, the cubes it read (SHA-256, experiment, config
  summary, hotmess version, git revision), its settings, claim rows and plotted numbers;
- the transcript viewer (Fig. 19): pick a line (experiment, model, size, budget) and a
  question (sortable by variance), see all its draws side by side.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
from pathlib import Path
from typing import Any

from hotmess.paper.build import BuildReport, claims_rows, format_value

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Rows of the plotted-numbers table per figure (the JSON file holds all of them).
MAX_NUMBER_ROWS = 300
_SKIP_KEYS = {"claims", "draws", "_var", "_len"}


def flatten(obj: Any, prefix: str = "", rows: list | None = None) -> list[tuple[str, str]]:
    """The plotted numbers as ``(path, value)`` rows: scalars and lists of scalars become one
    row each (numbers to 4 significant digits); long texts and per-draw transcripts are
    left to the JSON file."""
    rows = [] if rows is None else rows
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in _SKIP_KEYS:
                continue
            flatten(v, f"{prefix}.{k}" if prefix else str(k), rows)
    elif isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        for i, v in enumerate(obj):
            label = v.get("label") or v.get("id") or str(i) if isinstance(v, dict) else str(i)
            flatten(v, f"{prefix}[{label}]", rows)
    elif isinstance(obj, list):
        if all(not isinstance(v, dict | list) for v in obj):
            rows.append((prefix, ", ".join(format_value(v) for v in obj)))
        else:
            for i, v in enumerate(obj):
                flatten(v, f"{prefix}[{i}]", rows)
    else:
        text = format_value(obj)
        if len(text) <= 300:
            rows.append((prefix, text))
    return rows


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def _figure_view(name: str, stamp: dict[str, Any], out: Path) -> dict[str, Any]:
    png = out / f"{name}.png"
    rows = flatten(stamp.get("data", {}))
    files = [f for f in (f"{name}.pdf", f"{name}.png", f"{name}.json") if (out / f).exists()]
    cubes = []
    for cube, info in stamp.get("cubes", {}).items():
        cubes.append({**info, "name": cube,
                      "summary": json.dumps(info.get("config_summary", {}), sort_keys=True, default=str)})
    return {
        "name": name, "title": stamp.get("title") or name, "caption": stamp.get("caption", ""),
        "builder": stamp.get("builder", ""), "source": stamp.get("source", ""),
        "image": _data_uri(png) if png.exists() else None, "files": files, "cubes": cubes,
        "settings": json.dumps(stamp.get("settings", {}), sort_keys=True, default=str),
        "claims": stamp.get("claims", []), "numbers": rows[:MAX_NUMBER_ROWS],
        "n_numbers": len(rows), "missing_cubes": stamp.get("missing_cubes", []),
    }


def _transcripts(report: BuildReport) -> list[dict[str, Any]]:
    stamp = report.stamps.get("fig19")
    if not stamp:
        return []
    lines = []
    for ln in stamp["data"].get("lines", []):
        qs = []
        for q in ln.get("questions", []):
            qs.append({**q, "answers_text": ", ".join(f"{k}: {v}" for k, v in sorted(q["answers"].items()))})
        lines.append({"label": f"{ln['cube']} · {ln['model']} {ln['size']} · budget {ln['budget']}",
                      "n_questions": ln.get("n_questions", 0), "questions": qs})
    return lines


def render_report(report: BuildReport, out: str | Path) -> str:
    """The page's HTML for a finished build (see the module docstring)."""
    import jinja2

    from hotmess.core.cube import _git_revision  # the same provenance the cubes record

    out = Path(out)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = format_value
    try:
        from importlib.metadata import version

        ver = version("hotmess")
    except Exception:  # pragma: no cover - bare checkout
        ver = "unknown"
    missing = []
    for name, cubes in sorted(report.missing.items()):
        entry = report.entries.get(name)
        missing.append({"name": name, "title": entry.spec.title if entry else "",
                        "need": entry.spec.need if entry else "all",
                        "cubes": [{"name": c, "command": report.commands.get(c, "")} for c in cubes]})
    return env.get_template("report.html.j2").render(
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), version=ver,
        git_revision=_git_revision(),
        claims=claims_rows(report),
        failed=sorted(report.failed.items()),
        missing=missing,
        figures=[_figure_view(n, report.stamps[n], out) for n in sorted(report.built)],
        transcripts=_transcripts(report),
    )


def write_report(report: BuildReport, out: str | Path) -> Path:
    """Write ``<out>/index.html`` and return its path."""
    path = Path(out) / "index.html"
    tmp = path.with_name(".index.html.tmp")
    tmp.write_text(render_report(report, out), encoding="utf-8")
    tmp.replace(path)
    return path
