"""Shared pieces of the importers: per-draw records, the cube they make, provenance, merging.

Every importer turns files into a list of :class:`DrawRecord` (one per draw of one question in
one model x size x budget cell) and hands it to :func:`records_to_cube`, which checks the
records against each other (one target and one option count per question, one record per
draw) and builds a ``probabilities`` cube (``hotmess.core.schema``). :func:`finish` stamps
the schema version and the provenance attributes (source files, their SHA-256, the source
tool and its version, the import options) and :func:`write_cube` merges it with a cube
already at the destination and writes atomically (nothing partial is ever written).

Determinism: labels are sorted (natural order: ``q2`` before ``q10``), attributes hold no
wall-clock time of the import (``created`` = the newest run time the source tool recorded in
its files, else the newest modification time of the files), so
importing the same files twice gives the same cube.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "ImportFailure",
    "DrawRecord",
    "Labels",
    "option_labels",
    "target_index",
    "natural_key",
    "records_to_cube",
    "cube_to_records",
    "source_attrs",
    "finish",
    "write_cube",
]

#: Option labels by position (A, B, ...).
LETTERS = tuple(chr(ord("A") + i) for i in range(26))


class ImportFailure(ValueError):
    """Input that cannot be imported; the message is one line naming the file, line or sample."""


@dataclass(frozen=True)
class Labels:
    """Cube labels of one cell: model family, size, budget; parameters and token cap."""

    model: str
    size: str = "-"
    budget: str = "none"
    params: float = math.nan
    budget_tokens: float = math.nan


@dataclass
class DrawRecord:
    """One draw of one question in one cell, as read from a source file.

    Attributes
    ----------
    labels : Labels
    question : str
        Stable question id.
    draw : int
        Draw index within the (cell, question), 0-based.
    target : int
        Index of the correct option.
    n_options : int
        Number of options of the question.
    outcome : numpy.ndarray, shape (n_options,)
        Probability vector of the draw (one-hot for a parsed letter, uniform for a format
        error, softmax of log-likelihoods).
    where : str
        ``file:line`` or ``file: sample ...``, for error messages.
    """

    labels: Labels
    question: str
    draw: int
    target: int
    n_options: int
    outcome: np.ndarray
    where: str
    format_error: float = 0.0
    answer: str = ""
    parse_rule: str = ""
    text: str = ""
    reasoning_text: str = ""
    subject: str = ""
    seed: float = math.nan
    context: float = math.nan
    reasoning_tokens: float = math.nan
    output_tokens: float = math.nan
    actions: float = math.nan
    extra: dict[str, Any] = field(default_factory=dict)


def option_labels(n: int, where: str = "") -> tuple[str, ...]:
    """Labels ``A``.. of ``n`` options.

    Raises
    ------
    ImportFailure
        ``n`` outside 2..26.
    """
    if not 2 <= n <= len(LETTERS):
        raise ImportFailure(f"{where}: {n} options (need 2 to {len(LETTERS)})")
    return LETTERS[:n]


def target_index(value: Any, n_options: int, where: str, option_texts: Sequence[str] = ()) -> int:
    """The 0-based index of a target given as an index, a digit string, a letter or an
    option's text.

    Raises
    ------
    ImportFailure
        The value names no option (the message names ``where`` and the value).
    """
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    idx: int | None = None
    if isinstance(value, bool):
        idx = None
    elif isinstance(value, int | np.integer):
        idx = int(value)
    elif isinstance(value, float) and value.is_integer():
        idx = int(value)
    elif isinstance(value, str):
        s = value.strip()
        if re.fullmatch(r"\d+", s):
            idx = int(s)
        elif len(s) == 1 and s.upper() in LETTERS:
            idx = LETTERS.index(s.upper())
        elif s and list(option_texts).count(s) == 1:
            idx = list(option_texts).index(s)
    if idx is None or not 0 <= idx < n_options:
        raise ImportFailure(f"{where}: target {value!r} names none of the {n_options} options")
    return idx


def natural_key(label: Any) -> tuple:
    """Sort key putting ``q2`` before ``q10``."""
    parts = re.split(r"(\d+)", str(label))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


_NUM_VARS = ("format_error", "seed", "reasoning_tokens", "output_tokens", "actions")
_TEXT_VARS = ("answer", "parse_rule", "text", "reasoning_text")
_UNITS = {"reasoning_tokens": "tokens", "output_tokens": "tokens", "actions": "1"}


def records_to_cube(records: Sequence[DrawRecord], *, source: str = "input") -> xr.Dataset:
    """Build a ``probabilities`` cube from draw records (attributes not yet set).

    Parameters
    ----------
    records : sequence of DrawRecord
    source : str
        Names the input in messages.

    Returns
    -------
    xarray.Dataset
        Dims ``model x size x budget x question x draw x option``; ``outcome`` (NaN where a
        draw was not run and on options a question does not have), ``format_error``,
        ``answer``, ``parse_rule``, ``text``, ``reasoning_text``, ``seed``,
        ``reasoning_tokens``, ``output_tokens``, ``actions`` (where any record has them), and
        per-draw ``extra`` numbers of the records; coords ``params(model, size)``,
        ``budget_tokens(budget)``, ``subject(question)``, ``target(question)``,
        ``n_options(question)``, ``context(draw)`` where given.

    Raises
    ------
    ImportFailure
        No records; a question with two targets or two option counts; two records of one
        draw; a draw with two contexts. Each message names both places.
    """
    if not records:
        raise ImportFailure(f"{source}: no draws to import")
    first: dict[str, DrawRecord] = {}
    seen: dict[tuple, DrawRecord] = {}
    for r in records:
        q = first.setdefault(r.question, r)
        if q.target != r.target:
            raise ImportFailure(f"{r.where}: question {r.question!r} has target {LETTERS[r.target]} "
                                f"but {q.where} gives {LETTERS[q.target]}")
        if q.n_options != r.n_options:
            raise ImportFailure(f"{r.where}: question {r.question!r} has {r.n_options} options "
                                f"but {q.where} gives {q.n_options}")
        key = (r.labels.model, r.labels.size, r.labels.budget, r.question, r.draw)
        if key in seen:
            raise ImportFailure(f"{r.where}: draw {r.draw} of question {r.question!r} in cell "
                                f"{'/'.join(key[:3])} is also given at {seen[key].where}")
        seen[key] = r
        if r.draw < 0:
            raise ImportFailure(f"{r.where}: negative draw index {r.draw}")
    models = sorted({r.labels.model for r in records}, key=natural_key)
    sizes = sorted({r.labels.size for r in records}, key=natural_key)
    budgets = sorted({r.labels.budget for r in records}, key=natural_key)
    questions = sorted(first, key=natural_key)
    n_draw = max(r.draw for r in records) + 1
    n_opt = max(r.n_options for r in records)
    mi = {m: i for i, m in enumerate(models)}
    si = {s: i for i, s in enumerate(sizes)}
    bi = {b: i for i, b in enumerate(budgets)}
    qi = {q: i for i, q in enumerate(questions)}
    base = (len(models), len(sizes), len(budgets), len(questions), n_draw)
    outcome = np.full((*base, n_opt), np.nan)
    num = {k: np.full(base, np.nan) for k in _NUM_VARS}
    txt = {k: np.full(base, "", dtype=object) for k in _TEXT_VARS}
    extra_names = sorted({k for r in records for k in r.extra})
    extra = {k: np.full(base, np.nan) for k in extra_names}
    params = np.full((len(models), len(sizes)), np.nan)
    btok = np.full(len(budgets), np.nan)
    context = np.full(n_draw, np.nan)
    ctx_where: dict[int, str] = {}
    for r in records:
        idx = (mi[r.labels.model], si[r.labels.size], bi[r.labels.budget], qi[r.question], r.draw)
        outcome[idx][: r.n_options] = r.outcome
        for k in _NUM_VARS:
            num[k][idx] = getattr(r, k)
        for k in _TEXT_VARS:
            txt[k][idx] = getattr(r, k) or ""
        for k, v in r.extra.items():
            extra[k][idx] = v
        if not math.isnan(r.labels.params):
            params[idx[0], idx[1]] = r.labels.params
        if not math.isnan(r.labels.budget_tokens):
            btok[idx[2]] = r.labels.budget_tokens
        if not math.isnan(r.context):
            if not math.isnan(context[r.draw]) and context[r.draw] != r.context:
                raise ImportFailure(f"{r.where}: draw {r.draw} has context {r.context:g} but "
                                    f"{ctx_where[r.draw]} gives {context[r.draw]:g}")
            context[r.draw], ctx_where[r.draw] = r.context, r.where
    dims = ("model", "size", "budget", "question", "draw")
    from hotmess.core.cube import FLAG_VARS

    data: dict[str, Any] = {
        "outcome": (dims + ("option",), outcome,
                    {"units": "1", "long_name": "probability vector of the draw"}),
    }
    for k in _NUM_VARS:
        if k in FLAG_VARS or k == "format_error" or np.isfinite(num[k]).any():
            attrs = {"units": _UNITS[k]} if k in _UNITS else {}
            data[k] = (dims, num[k], attrs)
    data["format_error"][2]["long_name"] = "1 = the answer could not be parsed (uniform vector)"
    for k in _TEXT_VARS:
        if k in ("answer", "parse_rule") or any(v for v in txt[k].flat):
            data[k] = (dims, txt[k])
    for k in extra_names:
        data[k] = (dims, extra[k])
    coords: dict[str, Any] = {
        "model": np.array(models, dtype=object),
        "size": np.array(sizes, dtype=object),
        "budget": np.array(budgets, dtype=object),
        "question": np.array(questions, dtype=object),
        "draw": np.arange(n_draw, dtype=np.int64),
        "option": np.array(LETTERS[:n_opt], dtype=object),
        "params": (("model", "size"), params, {"units": "parameters"}),
        "budget_tokens": ("budget", btok, {"units": "tokens"}),
        "subject": ("question", np.array([first[q].subject for q in questions], dtype=object)),
        "target": ("question", np.array([first[q].target for q in questions], dtype=np.int64)),
        "n_options": ("question", np.array([first[q].n_options for q in questions], dtype=np.int64)),
    }
    if np.isfinite(context).any():
        coords["context"] = ("draw", context)
    return xr.Dataset(data, coords=coords)


def source_attrs(paths: Iterable[str | os.PathLike], *, tool: str, tool_version: str,
                 options: dict[str, Any], extra: dict[str, Any] | None = None,
                 created: str | None = None) -> dict[str, str]:
    """Provenance attributes of an import (all strings, no wall-clock time).

    Returns
    -------
    dict
        ``hotmess_version``, ``git_revision``, ... (:func:`hotmess.core.cube.provenance`),
        ``created`` = ``created`` when given (the time the source tool wrote into its
        files), else the newest modification time of the sources (UTC, ISO 8601),
        ``source_tool``, ``source_tool_version`` (``""`` where the files do not say),
        ``source_files`` (JSON list of file names), ``source_sha256`` (JSON object file name
        -> SHA-256), ``import_options`` (JSON) and ``extra`` (each JSON-encoded).
    """
    from hotmess.core.cube import file_hash, provenance

    paths = sorted({Path(p) for p in paths}, key=lambda p: (p.name, str(p)))
    attrs = provenance()
    newest = max((p.stat().st_mtime for p in paths), default=0.0)
    if created:
        attrs["created"] = created
        attrs["created_rule"] = f"newest run time recorded in the {tool} files"
    else:
        attrs["created"] = _dt.datetime.fromtimestamp(int(newest), _dt.UTC).isoformat(timespec="seconds")
        attrs["created_rule"] = "newest modification time of the source files"
    attrs["source_tool"] = tool
    attrs["source_tool_version"] = tool_version or ""
    attrs["source_files"] = json.dumps([p.name for p in paths])
    attrs["source_sha256"] = json.dumps({p.name: file_hash(p) for p in paths}, sort_keys=True)
    attrs["import_options"] = json.dumps(options, sort_keys=True, default=str)
    for k, v in (extra or {}).items():
        attrs[k] = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return attrs


def finish(ds: xr.Dataset, attrs: dict[str, str], kind: str = "probabilities") -> xr.Dataset:
    """Stamp the schema version and provenance on ``ds`` and validate it.

    Raises
    ------
    ImportFailure
        The cube does not follow the schema (a bug of the importer; the problems listed).
    """
    from hotmess.core import schema

    ds = ds.copy()
    ds.attrs = schema.stamp(dict(attrs), kind)
    problems = schema.validate(ds, kind)
    if problems:
        raise ImportFailure("imported cube does not follow the schema: " + "; ".join(problems))
    return ds


def _merge_json_list(a: str, b: str) -> str:
    return json.dumps(sorted(set(json.loads(a or "[]")) | set(json.loads(b or "[]"))))


def _merge_json_dict(a: str, b: str) -> str:
    return json.dumps({**json.loads(a or "{}"), **json.loads(b or "{}")}, sort_keys=True)


def cube_to_records(ds: xr.Dataset, where: str = "cube") -> list[DrawRecord]:
    """The draws of an imported cube as :class:`DrawRecord` (the inverse of
    :func:`records_to_cube`, for merging); draws not run are left out."""
    dims = ("model", "size", "budget", "question", "draw")
    out = ds["outcome"].transpose(*dims, "option").values
    ran = np.isfinite(out).any(-1)
    n_opt = ds["n_options"].values if "n_options" in ds.coords else np.isfinite(out).any(
        axis=(0, 1, 2, 4)).sum(-1)
    target = ds["target"].values
    subject = ds["subject"].values if "subject" in ds.coords else [""] * ds.sizes["question"]
    params = ds["params"].transpose("model", "size").values
    btok = ds["budget_tokens"].values
    context = ds["context"].values if "context" in ds.coords else np.full(ds.sizes["draw"], np.nan)
    per_draw = {name: ds[name].transpose(*dims).values for name, v in ds.data_vars.items()
                if name != "outcome" and tuple(sorted(v.dims)) == tuple(sorted(dims))}
    known = set(_NUM_VARS) | set(_TEXT_VARS)
    records = []
    for idx in zip(*np.nonzero(ran), strict=True):
        m, s, b, q, d = (int(i) for i in idx)
        n = int(n_opt[q])
        rec = DrawRecord(
            labels=Labels(str(ds.model.values[m]), str(ds["size"].values[s]), str(ds.budget.values[b]),
                          float(params[m, s]), float(btok[b])),
            question=str(ds.question.values[q]), draw=d, target=int(target[q]), n_options=n,
            outcome=out[m, s, b, q, d, :n].copy(), where=f"{where}: question {ds.question.values[q]!r}",
            subject=str(subject[q]), context=float(context[d]))
        for name, arr in per_draw.items():
            val = arr[m, s, b, q, d]
            if name in known:
                setattr(rec, name, val if name in _TEXT_VARS else float(val))
            elif arr.dtype.kind in "fiub":
                rec.extra[name] = float(val)
        records.append(rec)
    return records


def merge(old: xr.Dataset, new: xr.Dataset, where: str = "") -> xr.Dataset:
    """Add the cells, questions and draws of ``new`` to ``old``; where both hold the same
    draw, ``new`` wins. The result is rebuilt by :func:`records_to_cube` (same checks, same
    label order as a fresh import of everything).

    Raises
    ------
    ImportFailure
        Different kinds, or a question whose target or option count differs.
    """
    if old.attrs.get("outcome_kind") != new.attrs.get("outcome_kind"):
        raise ImportFailure(f"{where}: existing cube is of kind {old.attrs.get('outcome_kind')!r}, "
                            f"the import of kind {new.attrs.get('outcome_kind')!r}; write elsewhere")
    fresh = cube_to_records(new, "import")
    keys = {(r.labels.model, r.labels.size, r.labels.budget, r.question, r.draw) for r in fresh}
    kept = [r for r in cube_to_records(old, where)
            if (r.labels.model, r.labels.size, r.labels.budget, r.question, r.draw) not in keys]
    out = records_to_cube(kept + fresh, source=where)
    attrs = dict(new.attrs)
    attrs["source_files"] = _merge_json_list(old.attrs.get("source_files", ""), new.attrs.get("source_files", ""))
    attrs["source_sha256"] = _merge_json_dict(old.attrs.get("source_sha256", ""),
                                              new.attrs.get("source_sha256", ""))
    attrs["created"] = max(str(old.attrs.get("created", "")), str(new.attrs.get("created", "")))
    if kept:
        hist = json.loads(old.attrs.get("import_history", "[]") or "[]")
        entry = {"source_files": json.loads(old.attrs.get("source_files", "[]") or "[]"),
                 "import_options": old.attrs.get("import_options", "")}
        if entry not in hist:
            hist.append(entry)
        attrs["import_history"] = json.dumps(hist, sort_keys=True)
    out.attrs = attrs
    return out


def write_cube(ds: xr.Dataset, path: str | os.PathLike, *, merge_existing: bool = True) -> xr.Dataset:
    """Write an imported cube to ``path`` atomically, merged with the cube already there.

    Returns
    -------
    xarray.Dataset
        The cube as written.

    Raises
    ------
    ImportFailure
        The existing cube cannot be read or merged, or the result breaks the schema; the
        file on disk is then unchanged.
    """
    from hotmess.core import schema
    from hotmess.core.cube import CubeError, open_cube, save_cube

    path = Path(path)
    if merge_existing and path.exists():
        try:
            old = open_cube(path)
        except CubeError as exc:
            raise ImportFailure(str(exc)) from None
        if ds.attrs.get("outcome_kind") != "probabilities":
            raise ImportFailure(f"{path}: a cube is already there and merging is implemented for "
                                f"multiple-choice cubes only; import every log again with --replace, "
                                f"or write to another -o")
        ds = merge(old, ds, str(path))
        kind = ds.attrs.get("outcome_kind", "probabilities")
        problems = schema.validate(ds, kind)
        if problems:
            raise ImportFailure(f"{path}: merged cube breaks the schema: " + "; ".join(problems))
    save_cube(ds, path)
    return ds
