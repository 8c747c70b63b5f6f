"""Import a long table of draws (CSV, JSONL or Parquet): one row per draw.

The format (the README has a five-line example)
----------------------------------------------
Required columns:

``model``
    model family label;
``question``
    stable question id (text);
``draw``
    draw index, an integer >= 0, unique within (model, size, budget, question);
``target``
    the correct option: a letter (``A``..) or a 0-based option index;

and **either** ``answer`` (the draw's answer: a letter or a 0-based option index; empty =
unparseable, scored as the uniform vector and counted as a format error; a letter or index
outside the options is a format error too, rule ``out_of_range``) **or** ``p_<label>``
columns (``p_A``, ``p_B``, ...: the draw's probability vector, each row summing to 1 within
1e-6; a row with every ``p_`` empty is a format error; a question with fewer options leaves
the other columns empty in all of its rows).

Optional columns: ``size`` (default ``-``), ``params`` (parameters), ``budget`` (label,
default ``none``), ``budget_tokens`` (tokens), ``subject``, ``n_options`` (with ``answer``:
the question's option count; default: the ``--options`` count, else the highest letter or
index seen anywhere in ``answer``/``target`` plus one), ``reasoning_tokens``,
``output_tokens`` (tokens), ``seed`` (integer), ``context`` (few-shot context id of the
draw), ``text`` (the raw answer text). Any other column is an error (it catches typos).

Readers: pandas (CSV, Parquet through pyarrow); JSONL is read line by line with :mod:`json`
so a broken line is named by its number. The format is chosen by the extension (``.csv``,
``.jsonl``/``.ndjson``, ``.parquet``/``.pq``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hotmess.plugins.importers.common import (
    LETTERS,
    DrawRecord,
    ImportFailure,
    Labels,
    finish,
    records_to_cube,
    source_attrs,
)

REQUIRED = ("model", "question", "draw", "target")
OPTIONAL = ("size", "params", "budget", "budget_tokens", "subject", "n_options", "reasoning_tokens",
            "output_tokens", "seed", "context", "text")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet"}
_P_RE = re.compile(r"^p_([A-Z])$")


def _read_jsonl(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    rows, lines = [], []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ImportFailure(f"{path}:{n}: not a JSON object ({exc.msg}; truncated line?)") from None
            if not isinstance(obj, dict):
                raise ImportFailure(f"{path}:{n}: a JSON {type(obj).__name__}, expected an object per row")
            rows.append(obj)
            lines.append(n)
    return rows, lines


def read_table(path: str | Path):
    """Read a long table into a pandas DataFrame with a ``_line`` column (1-based line of the
    row in CSV/JSONL files, the row number + 1 in Parquet files).

    Raises
    ------
    ImportFailure
        Unknown extension, empty file, unreadable content (the message names the file and,
        where the reader says, the line).
    """
    import pandas as pd

    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImportFailure(f"{path}: unknown table format {path.suffix!r} (use {', '.join(FORMATS)})")
    if not path.is_file():
        raise ImportFailure(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImportFailure(f"{path}: empty file")
    if fmt == "jsonl":
        rows, lines = _read_jsonl(path)
        df = pd.DataFrame.from_records(rows)
        df["_line"] = lines
    elif fmt == "csv":
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
        except UnicodeDecodeError:
            raise ImportFailure(f"{path}: not a UTF-8 text (CSV) file") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise ImportFailure(f"{path}: not a readable CSV table: {str(exc).strip()}") from None
        df["_line"] = np.arange(len(df)) + 2
    else:
        try:
            df = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several kinds for non-Parquet bytes
            raise ImportFailure(f"{path}: not a readable Parquet file: {str(exc).splitlines()[0]}") from None
        df["_line"] = np.arange(len(df)) + 1
    if len(df) == 0:
        raise ImportFailure(f"{path}: no rows")
    return df


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip())


def _number(v: Any, col: str, where: str, integer: bool = False) -> float:
    if _empty(v):
        return math.nan
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ImportFailure(f"{where}: column {col!r} value {v!r} is not a number") from None
    if integer and not (math.isfinite(x) and x.is_integer()):
        raise ImportFailure(f"{where}: column {col!r} value {v!r} is not an integer")
    return x


def _index(v: Any) -> int | None:
    """A letter or 0-based index as an int (None when neither)."""
    if isinstance(v, int | np.integer) and not isinstance(v, bool):
        return int(v)
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        s = v.strip()
        if re.fullmatch(r"\d+", s):
            return int(s)
        if len(s) == 1 and s.upper() in LETTERS:
            return LETTERS.index(s.upper())
    return None


def table_records(path: str | Path, *, options: int | None = None) -> tuple[list[DrawRecord], dict[str, Any]]:
    """The draws of one long table as records (format in the module docstring).

    Parameters
    ----------
    path : path
    options : int, optional
        Option count of every question for ``answer`` tables without ``n_options``.

    Returns
    -------
    records : list of DrawRecord
    info : dict
        ``format`` (csv/jsonl/parquet), ``rows``, ``columns``, ``mode`` (answer/probabilities).

    Raises
    ------
    ImportFailure
        Missing or unknown columns, bad values (named by file, line and column).
    """
    path = Path(path)
    df = read_table(path)
    cols = [c for c in df.columns if c != "_line"]
    pcols = sorted((c for c in cols if _P_RE.match(str(c))), key=lambda c: LETTERS.index(c[2]))
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise ImportFailure(f"{path}: missing column(s) {missing} (required: {list(REQUIRED)} and "
                            f"'answer' or p_<label> columns)")
    if ("answer" in cols) == bool(pcols):
        raise ImportFailure(f"{path}: give either an 'answer' column or p_<label> columns, not "
                            f"{'both' if pcols else 'neither'}")
    unknown = [c for c in cols if c not in REQUIRED + OPTIONAL + ("answer",) and c not in pcols]
    if unknown:
        raise ImportFailure(f"{path}: unknown column(s) {unknown} (known: {list(REQUIRED + OPTIONAL)}, "
                            f"answer, p_A, p_B, ...)")
    if pcols and [c[2] for c in pcols] != list(LETTERS[: len(pcols)]):
        raise ImportFailure(f"{path}: probability columns {pcols} must be p_A, p_B, ... without gaps")
    rows = df.to_dict("records")
    default_n = options
    if not pcols and default_n is None and "n_options" not in cols:
        seen = [_index(r[c]) for r in rows for c in ("answer", "target") if not _empty(r[c])]
        default_n = max([i for i in seen if i is not None], default=0) + 1
    records = []
    for row in rows:
        where = f"{path}:{row['_line']}"
        for c in REQUIRED:
            if _empty(row[c]):
                raise ImportFailure(f"{where}: column {c!r} is empty")
        labels = Labels(
            model=str(row["model"]), size=str(row.get("size") or "-") if not _empty(row.get("size")) else "-",
            budget=str(row["budget"]) if not _empty(row.get("budget")) else "none",
            params=_number(row.get("params"), "params", where),
            budget_tokens=_number(row.get("budget_tokens"), "budget_tokens", where))
        draw = int(_number(row["draw"], "draw", where, integer=True))
        question = str(row["question"]).strip()
        where = f"{where} (question {question!r}, draw {draw})"
        tgt = _index(row["target"])
        if tgt is None:
            raise ImportFailure(f"{where}: target {row['target']!r} is neither a letter nor an index")
        rule, answer, fe = "", "", 0.0
        if pcols:
            vals = np.array([_number(row[c], c, where) for c in pcols])
            present = np.isfinite(vals)
            if not present.any():
                # a draw whose probability vector could not be parsed: uniform over the
                # question's options (the option count comes from its other rows)
                n = -1
                vec = None
                fe, rule = 1.0, "none"
            else:
                n = int(present.sum())
                if not present[:n].all():
                    raise ImportFailure(f"{where}: p_ columns with gaps (empty "
                                        f"{[pcols[i] for i in np.flatnonzero(~present[:n])]})")
                vec = vals[:n]
                if (vec < -1e-9).any() or abs(vec.sum() - 1.0) > 1e-6:
                    raise ImportFailure(f"{where}: probabilities {vec.tolist()} do not form a "
                                        f"distribution (non-negative, sum 1)")
                vec = np.clip(vec, 0.0, None)
                top = np.flatnonzero(vec == vec.max())
                answer = LETTERS[top[0]] if len(top) == 1 else ""
                rule = "table_probabilities"
        else:
            n = int(_number(row["n_options"], "n_options", where, integer=True)) \
                if "n_options" in cols and not _empty(row["n_options"]) else (default_n or 0)
            if n < 2:
                raise ImportFailure(f"{where}: cannot tell the number of options (add an n_options "
                                    f"column or pass --options)")
            raw = row["answer"]
            idx = None if _empty(raw) else _index(raw)
            if _empty(raw):
                fe, rule = 1.0, "none"
            elif idx is None:
                fe, rule = 1.0, "unparseable"
            elif idx >= n:
                fe, rule = 1.0, "out_of_range"
            else:
                answer, rule = LETTERS[idx], "table_answer"
            vec = None if fe else np.eye(n)[idx]
        records.append(DrawRecord(
            labels=labels, question=question, draw=draw, target=tgt,
            n_options=n, outcome=vec, where=where, format_error=fe, answer=answer, parse_rule=rule,
            text=str(row["text"]) if not _empty(row.get("text")) else "",
            subject=str(row["subject"]) if not _empty(row.get("subject")) else "",
            seed=_number(row.get("seed"), "seed", where, integer=True),
            context=_number(row.get("context"), "context", where),
            reasoning_tokens=_number(row.get("reasoning_tokens"), "reasoning_tokens", where),
            output_tokens=_number(row.get("output_tokens"), "output_tokens", where)))
    # option counts of unparsed probability rows come from the question's other rows
    counts: dict[str, int] = {}
    for r in records:
        if r.n_options > 0:
            counts.setdefault(r.question, r.n_options)
    for r in records:
        if r.n_options < 0:
            if r.question not in counts:
                raise ImportFailure(f"{r.where}: no row of this question has probabilities, so its "
                                    f"option count is unknown")
            r.n_options = counts[r.question]
        if r.outcome is None:
            r.outcome = np.full(r.n_options, 1.0 / r.n_options)
        if not 0 <= r.target < r.n_options:
            raise ImportFailure(f"{r.where}: target {LETTERS[r.target] if r.target < 26 else r.target} "
                                f"outside the {r.n_options} options")
    info = {"format": FORMATS[path.suffix.lower()], "rows": len(rows), "columns": cols,
            "mode": "probabilities" if pcols else "answer"}
    return records, info


def import_table(paths: list[str | Path], *, options: int | None = None) -> xr.Dataset:
    """Import long tables (format in the module docstring) into one ``probabilities`` cube.

    Returns
    -------
    xarray.Dataset
        See :func:`hotmess.plugins.importers.common.records_to_cube`; attributes from
        :func:`~hotmess.plugins.importers.common.source_attrs` (tool ``table``).

    Raises
    ------
    ImportFailure
        One line naming the file, line and what is wrong.
    """
    if not paths:
        raise ImportFailure("no table given")
    records, infos = [], {}
    for p in paths:
        recs, info = table_records(p, options=options)
        records += recs
        infos[Path(p).name] = info
    ds = records_to_cube(records, source=", ".join(str(p) for p in paths))
    attrs = source_attrs(paths, tool="table", tool_version="",
                         options={"options": options}, extra={"tables": infos})
    return finish(ds, attrs)
