"""Import a survey of intelligence and coherence ranks into a cube (docs/science.md, "Figures: SWE-bench, model-written evals, survey, transcripts, report page").

The CSV format
--------------
UTF-8 text, comma-separated, one header row with exactly these columns (any order)::

    entity,group,rater,attribute,rank

Lines whose first character is ``#`` are comments (kept in the cube's ``csv_comments``
attribute, so a file labelled ILLUSTRATIVE stays labelled in the cube and the figures); blank
lines are skipped. One row is one rater's rank of one entity on one attribute:

``entity``
    Name of the entity (non-empty), e.g. ``GPT-4``, ``octopus``, ``the UN``.
``group``
    The entity's group for Fig. 27 (non-empty; the paper's groups are ``biological``, ``AI``
    and ``organisation``). An entity must have the same group on every row.
``rater``
    Anonymous id of the person who ranked (non-empty). In the paper each rater ranked only
    one attribute (5 by intelligence, 6 by coherence).
``attribute``
    ``intelligence``, ``coherence`` or ``incoherence`` (case-insensitive).
``rank``
    The entity's position when the rater sorted the entities by the attribute, **1 = least**
    (least intelligent / least coherent) and **N = most**, where N is the number of distinct
    entities in the file. Ties may be given as the mean rank (e.g. ``2.5``); a rank must lie
    in ``[1, N]``.

Rules: a rater ranks an entity at most once per attribute (``coherence`` and
``incoherence`` count as the same attribute); a rater need not rank every entity (missing
ranks are NaN and are left out of that entity's mean).

Coherence to incoherence
------------------------
A coherence rank ``r`` (N = most coherent) becomes the incoherence rank ``r' = N + 1 - r``
(N = most incoherent), so that both axes of Fig. 4b grow with the quantity named.
Ranks given as ``incoherence`` are used as they are.

The cube
--------
An ``xarray.Dataset`` with dims ``measure x entity x rater``:

``rank`` (measure, entity, rater)
    The rank on each measure (``intelligence``, ``incoherence``) after the inversion; NaN
    where the rater did not rank the entity on that measure.
``rank_as_given`` (measure, entity, rater)
    The rank as written in the CSV (coherence ranks not inverted).
``mean`` (measure, entity)
    Mean rank over the raters who ranked the entity (ranks, 1..N).
``sem`` (measure, entity)
    Standard error of the mean, ``s / sqrt(n)`` with ``s`` the sample standard deviation
    (``ddof = 1``) over the ``n`` raters; NaN where ``n < 2``.
``n_raters`` (measure, entity)
    Number of raters averaged.
Coordinates: ``measure``, ``entity`` with ``group(entity)``, ``rater`` with
``attribute(measure, rater)`` (the attribute as given in the CSV: ``coherence`` or
``incoherence`` for the incoherence measure, ``""`` where the rater did not rank the measure).
Attributes: ``n_entities`` (N), ``source_csv`` (file name), ``csv_comments``,
``inversion`` (the rule above).
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

COLUMNS = ("entity", "group", "rater", "attribute", "rank")
#: The cube's measures, in order.
MEASURES = ("intelligence", "incoherence")
#: attribute as written in the CSV -> (measure, whether the rank is inverted).
ATTRIBUTES = {
    "intelligence": ("intelligence", False),
    "coherence": ("incoherence", True),
    "incoherence": ("incoherence", False),
}
INVERSION = "incoherence rank = N + 1 - coherence rank (N = number of entities; rank 1 = least, N = most)"
#: The packaged example (ILLUSTRATIVE ranks, not the paper's).
EXAMPLE_CSV = Path(__file__).parent / "data" / "example_survey.csv"


class SurveyError(ValueError):
    """A survey CSV is malformed; the message names the file and line."""


@dataclass(frozen=True)
class Row:
    """One validated CSV row (``line`` is the 1-based line number in the file)."""

    entity: str
    group: str
    rater: str
    attribute: str
    rank: float
    line: int


def read_survey_csv(path: str | os.PathLike) -> tuple[list[Row], list[str]]:
    """Read and validate a survey CSV (format in the module docstring).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    rows : list of Row
        In file order.
    comments : list of str
        The comment lines, without the leading ``#``.

    Raises
    ------
    FileNotFoundError
        No such file.
    SurveyError
        Missing or unknown columns, an empty field, an unknown attribute, a rank that is not
        a number or lies outside ``[1, N]``, a rater ranking the same entity twice on one
        attribute, or an entity given two groups; the message is ``<file>:<line>: ...``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"survey CSV not found: {path}")
    name = str(path)
    text = path.read_text(encoding="utf-8-sig")
    comments: list[str] = []
    data_lines: list[tuple[int, str]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.startswith("#"):
            comments.append(line[1:].strip())
        elif line.strip():
            data_lines.append((lineno, line))
    if not data_lines:
        raise SurveyError(f"{name}: no header row (expected columns {', '.join(COLUMNS)})")

    header_line, header_text = data_lines[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    missing = [c for c in COLUMNS if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown or len(header) != len(set(header)):
        raise SurveyError(
            f"{name}:{header_line}: header must have the columns {', '.join(COLUMNS)} exactly once"
            + (f"; missing {missing}" if missing else "")
            + (f"; unknown {unknown}" if unknown else "")
        )
    col = {h: i for i, h in enumerate(header)}

    raw: list[tuple[int, dict[str, str]]] = []
    for lineno, line in data_lines[1:]:
        fields = next(csv.reader(io.StringIO(line)))
        if len(fields) != len(header):
            raise SurveyError(f"{name}:{lineno}: expected {len(header)} fields, found {len(fields)}")
        rec = {c: fields[col[c]].strip() for c in COLUMNS}
        for c in COLUMNS:
            if not rec[c]:
                raise SurveyError(f"{name}:{lineno}: missing {c}")
        if rec["attribute"].lower() not in ATTRIBUTES:
            raise SurveyError(
                f"{name}:{lineno}: unknown attribute {rec['attribute']!r}; expected one of {', '.join(ATTRIBUTES)}"
            )
        raw.append((lineno, rec))
    if not raw:
        raise SurveyError(f"{name}: no data rows")

    n = len({rec["entity"] for _, rec in raw})
    rows: list[Row] = []
    seen: dict[tuple[str, str, str], int] = {}
    groups: dict[str, tuple[str, int]] = {}
    for lineno, rec in raw:
        try:
            rank = float(rec["rank"])
        except ValueError:
            raise SurveyError(f"{name}:{lineno}: rank {rec['rank']!r} is not a number") from None
        if not np.isfinite(rank) or not 1 <= rank <= n:
            raise SurveyError(
                f"{name}:{lineno}: rank {rec['rank']} of entity {rec['entity']!r} is out of range [1, {n}] "
                f"(N = {n} distinct entities in the file)"
            )
        attribute = rec["attribute"].lower()
        key = (rec["rater"], ATTRIBUTES[attribute][0], rec["entity"])
        if key in seen:
            raise SurveyError(
                f"{name}:{lineno}: duplicate rank: rater {rec['rater']!r} already ranked entity "
                f"{rec['entity']!r} on {key[1]} at line {seen[key]}"
            )
        seen[key] = lineno
        prev = groups.setdefault(rec["entity"], (rec["group"], lineno))
        if prev[0] != rec["group"]:
            raise SurveyError(
                f"{name}:{lineno}: entity {rec['entity']!r} has group {rec['group']!r} here but "
                f"{prev[0]!r} at line {prev[1]}"
            )
        rows.append(Row(rec["entity"], rec["group"], rec["rater"], attribute, rank, lineno))
    return rows, comments


def survey_cube(rows: list[Row], *, n_entities: int | None = None) -> xr.Dataset:
    """Build the survey cube from validated rows (layout in the module docstring).

    Parameters
    ----------
    rows : list of Row
        From :func:`read_survey_csv`.
    n_entities : int, optional
        N for the inversion; default the number of distinct entities in ``rows``.

    Returns
    -------
    xarray.Dataset
        Dims ``measure (2) x entity x rater``; entities and raters in order of first
        appearance.

    Raises
    ------
    SurveyError
        ``n_entities`` smaller than the number of entities or than a rank.
    """
    entities = list(dict.fromkeys(r.entity for r in rows))
    raters = list(dict.fromkeys(r.rater for r in rows))
    n = len(entities) if n_entities is None else int(n_entities)
    if n < len(entities) or any(r.rank > n for r in rows):
        raise SurveyError(f"n_entities = {n} is smaller than the number of entities or a rank in the file")
    group = {r.entity: r.group for r in rows}
    ei = {e: i for i, e in enumerate(entities)}
    ri = {r: i for i, r in enumerate(raters)}
    shape = (len(MEASURES), len(entities), len(raters))
    given = np.full(shape, np.nan)
    rank = np.full(shape, np.nan)
    attribute = np.full((len(MEASURES), len(raters)), "", dtype=object)
    for r in rows:
        measure, invert = ATTRIBUTES[r.attribute]
        m = MEASURES.index(measure)
        given[m, ei[r.entity], ri[r.rater]] = r.rank
        rank[m, ei[r.entity], ri[r.rater]] = (n + 1 - r.rank) if invert else r.rank
        attribute[m, ri[r.rater]] = r.attribute

    count = np.sum(~np.isnan(rank), axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        total = np.nansum(rank, axis=2)
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        dev2 = np.nansum((rank - mean[..., None]) ** 2, axis=2)
        sd = np.sqrt(dev2 / np.maximum(count - 1, 1))
        sem = np.where(count >= 2, sd / np.sqrt(np.maximum(count, 1)), np.nan)

    dims3 = ("measure", "entity", "rater")
    ds = xr.Dataset(
        {
            "rank": (dims3, rank, {"long_name": "rank after inverting coherence to incoherence",
                                   "units": "rank (1 = least, N = most)"}),
            "rank_as_given": (dims3, given, {"long_name": "rank as written in the CSV"}),
            "mean": (("measure", "entity"), mean, {"long_name": "mean rank over raters"}),
            "sem": (("measure", "entity"), sem,
                    {"long_name": "standard error of the mean rank, std(ddof=1)/sqrt(n); NaN for n < 2"}),
            "n_raters": (("measure", "entity"), count.astype(np.int64)),
        },
        coords={
            "measure": list(MEASURES),
            "entity": np.array(entities, dtype=object),
            "group": ("entity", np.array([group[e] for e in entities], dtype=object)),
            "rater": np.array(raters, dtype=object),
            "attribute": (("measure", "rater"), attribute),
        },
        attrs={"n_entities": n, "inversion": INVERSION, "source": "docs/science.md, survey (arXiv 2601.23045)"},
    )
    return ds


def import_survey(path: str | os.PathLike, *, n_entities: int | None = None) -> xr.Dataset:
    """Read a survey CSV and build its cube (:func:`read_survey_csv` + :func:`survey_cube`).

    The cube's attributes record the file name (``source_csv``, no directory) and its
    comment lines (``csv_comments``); ``illustrative`` is ``"yes"`` when a comment says
    ILLUSTRATIVE.

    Raises
    ------
    FileNotFoundError, SurveyError
        See :func:`read_survey_csv`.
    """
    rows, comments = read_survey_csv(path)
    ds = survey_cube(rows, n_entities=n_entities)
    ds.attrs["source_csv"] = Path(path).name
    ds.attrs["csv_comments"] = "\n".join(comments)
    ds.attrs["illustrative"] = "yes" if any("ILLUSTRATIVE" in c.upper() for c in comments) else "no"
    return ds
