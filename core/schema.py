"""The cube schema: every dimension, coordinate and data variable a cube may hold.

This module is the one place the cube's layout is defined. The sampling engine, every
producer (synthetic optimizer, SWE-bench, survey, importers) and every figure builder use it:
producers stamp :data:`SCHEMA_VERSION` into a cube's attributes (:func:`stamp`), figure
builders check the variables they read with :func:`require`, and :func:`validate` lists every
problem of a cube at once. See ``docs/design.md`` ("The cube").

A cube has a *kind* (attribute ``outcome_kind``), which sets its outcome dimension:

==================  =============  =======================================================
kind                outcome dim    made by
==================  =============  =======================================================
``probabilities``   ``option``     multiple-choice tasks (MMLU, GPQA, MWE multiple choice)
``tests``           ``test``       SWE-bench (pass/fail per unit test)
``embedding``       ``embedding``  open-ended answers (MWE open-ended)
``point``           ``coordinate`` the synthetic optimizer (one point per rollout ``step``)
``survey``          (none)         the survey of rankings (``measure x entity x rater``)
``summary``         (none)         a study script's statistics of other cubes (e.g.
                                   ``synthetic_compute``: ``budget x train_seed x size``);
                                   its own dims, checked by the figure that reads it
==================  =============  =======================================================

Schema versions: ``1`` = cubes written before the version was recorded (no
``schema_version`` attribute; readable, :func:`upgrade` fills what it can); ``2`` = this
module.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

#: Written into every cube's attributes as ``schema_version``.
SCHEMA_VERSION = 2
#: Versions :func:`upgrade` can read (1 = unversioned cubes of hotmess 0.1).
READABLE_VERSIONS = (1, 2)

#: Outcome dimension per kind (``None``: the kind has no outcome vector).
OUTCOME_DIMS: dict[str, str | None] = {
    "probabilities": "option",
    "tests": "test",
    "embedding": "embedding",
    "point": "coordinate",
    "survey": None,
    "summary": None,
}
KINDS = tuple(OUTCOME_DIMS)
#: Dimensions every sampled cube (all kinds but ``survey``) is indexed by, in this order.
CELL_DIMS = ("model", "size", "budget")
SAMPLE_DIMS = ("model", "size", "budget", "question", "draw")


class SchemaError(ValueError):
    """A cube does not follow the schema.

    Attributes
    ----------
    problems : list of str
        Every problem found, each naming the variable and what is wrong.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = list(problems)


class MissingVariableError(SchemaError):
    """A figure or metric needs a variable the cube lacks (the message names the experiment,
    the variable and the command that would produce it)."""


@dataclass(frozen=True)
class Variable:
    """One entry of the schema.

    Attributes
    ----------
    name : str
    dims : tuple of str
        Dimension names; ``"<outcome>"`` stands for the kind's outcome dimension. A cube
        may hold the variable over a *subset* of these dims only where ``subset_ok``.
    dtype : str
        NumPy kind letters allowed: ``"f"`` float, ``"i"`` int, ``"O"``/``"U"`` text.
    units : str
        CF-style units (``"tokens"``, ``"s"``, ``"parameters"``, ``"1"`` for fractions).
    meaning : str
    role : {"coord", "data"}
    kinds : tuple of str
        Kinds of cube that must hold it (empty: optional everywhere).
    subset_ok : bool
        The variable may be stored over fewer dims than ``dims`` (e.g. a producer's
        ``params`` over ``size`` only).
    """

    name: str
    dims: tuple[str, ...]
    dtype: str
    units: str
    meaning: str
    role: str = "data"
    kinds: tuple[str, ...] = ()
    subset_ok: bool = False


_SAMPLED = ("probabilities", "tests", "embedding")
_ALL_SAMPLED = _SAMPLED + ("point",)
_TEXT = "OUS"
_NUM = "fiub"

VARIABLES: dict[str, Variable] = {v.name: v for v in (
    # --- dimension coordinates
    Variable("model", ("model",), _TEXT, "", "model family label", "coord", _ALL_SAMPLED),
    Variable("size", ("size",), _TEXT, "", "model size label", "coord", _ALL_SAMPLED),
    Variable("budget", ("budget",), _TEXT, "", "reasoning budget label", "coord", _SAMPLED),
    Variable("question", ("question",), _TEXT, "", "stable question / task / problem id", "coord",
             _ALL_SAMPLED),
    Variable("draw", ("draw",), "iu", "", "draw index (a seed and few-shot context; a rollout start)",
             "coord", _ALL_SAMPLED),
    Variable("option", ("option",), _TEXT, "", "answer option label (A, B, ...)", "coord",
             ("probabilities",)),
    Variable("test", ("test",), "iuOUS", "", "unit-test index within a task", "coord", ("tests",)),
    Variable("embedding", ("embedding",), "iuOUS", "", "embedding coordinate", "coord", ("embedding",)),
    Variable("coordinate", ("coordinate",), "iuOUS", "", "coordinate of the optimizer's point",
             "coord", ("point",)),
    Variable("step", ("step",), "iu", "", "optimizer rollout step t", "coord", ("point",)),
    # --- other coordinates
    Variable("params", ("model", "size"), _NUM, "parameters", "parameter count (NaN: unknown)",
             "coord", _ALL_SAMPLED, subset_ok=True),
    Variable("budget_tokens", ("budget",), _NUM, "tokens",
             "reasoning-token cap of the budget (NaN: effort level or no cap)", "coord", _SAMPLED),
    Variable("budget_effort", ("budget",), _TEXT, "", "vendor effort level (\"\": token cap)",
             "coord"),
    Variable("subject", ("question",), _TEXT, "", "subject / subset / repository", "coord"),
    Variable("target", ("question",), "iuOUS", "",
             "correct option index (multiple choice); task-defined otherwise", "coord",
             ("probabilities",)),
    Variable("context", ("draw",), "iuf", "", "few-shot context id of the draw", "coord"),
    # --- per-draw data
    Variable("outcome", SAMPLE_DIMS + ("<outcome>",), "f", "1",
             "scored outcome of the draw: probability vector, test pass/fail, embedding; "
             "NaN where not run", "data", _ALL_SAMPLED),
    Variable("reasoning_tokens", SAMPLE_DIMS, "f", "tokens",
             "reasoning tokens of the draw (NaN: unknown or not run)"),
    Variable("output_tokens", SAMPLE_DIMS, "f", "tokens",
             "all generated tokens of the draw, reasoning included (NaN: unknown)"),
    Variable("finish_reason", SAMPLE_DIMS, "fi", "",
             "why generation ended: CF flags 0 stop, 1 length, 2 budget, 3 error"),
    Variable("format_error", SAMPLE_DIMS, "fi", "1",
             "1 = the answer could not be parsed (scored as the task's fallback vector)"),
    Variable("answer", SAMPLE_DIMS, _TEXT, "", "the parsed answer"),
    Variable("parse_rule", SAMPLE_DIMS, _TEXT, "", "answer-extraction rule that produced it"),
    Variable("text", SAMPLE_DIMS, _TEXT, "", "the visible answer text"),
    Variable("reasoning_text", SAMPLE_DIMS, _TEXT, "", "the reasoning text"),
    Variable("seed", SAMPLE_DIMS, "fi", "", "sampling seed of the draw"),
    Variable("latency_s", SAMPLE_DIMS, "f", "s", "wall-clock seconds of the draw's request"),
    Variable("actions", SAMPLE_DIMS, "f", "1", "number of agent actions (assistant messages)"),
    Variable("logprob", SAMPLE_DIMS + ("<outcome>",), "f", "nats",
             "log-probability of each option label as the answer token"),
)}

#: Attributes every cube carries (provenance; see :func:`hotmess.core.cube.provenance`).
REQUIRED_ATTRS = ("schema_version", "outcome_kind", "hotmess_version", "git_revision", "created")


def outcome_dim(kind: str) -> str | None:
    """The outcome dimension of a kind of cube.

    Raises
    ------
    SchemaError
        ``kind`` is not one of :data:`KINDS`.
    """
    if kind not in OUTCOME_DIMS:
        raise SchemaError(f"unknown cube kind {kind!r}; known kinds: {list(KINDS)}")
    return OUTCOME_DIMS[kind]


def kind_of(ds: xr.Dataset) -> str | None:
    """The cube's kind: its ``outcome_kind`` attribute, else inferred from its dimensions."""
    kind = ds.attrs.get("outcome_kind")
    if kind in OUTCOME_DIMS:
        return str(kind)
    for k, dim in OUTCOME_DIMS.items():
        if dim is not None and dim in ds.dims:
            return k
    if "entity" in ds.dims:
        return "survey"
    return None


def version_of(ds: xr.Dataset) -> int:
    """The schema version a cube was written with (1 when it records none).

    Raises
    ------
    SchemaError
        The attribute is not an integer.
    """
    raw = ds.attrs.get("schema_version")
    if raw is None:
        return 1
    try:
        return int(raw)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"schema_version attribute {raw!r} is not an integer") from exc


def stamp(attrs: dict[str, Any], kind: str) -> dict[str, Any]:
    """Add ``schema_version`` and ``outcome_kind`` to a cube's attributes (returns ``attrs``).

    Raises
    ------
    SchemaError
        Unknown ``kind``.
    """
    outcome_dim(kind)
    attrs["schema_version"] = str(SCHEMA_VERSION)
    attrs["outcome_kind"] = kind
    return attrs


def _dims_of(var: Variable, kind: str) -> tuple[str, ...]:
    odim = OUTCOME_DIMS.get(kind)
    dims = tuple(odim if d == "<outcome>" else d for d in var.dims)
    if kind == "point":  # the synthetic optimizer: per step, no budget
        dims = tuple(d for d in dims if d != "budget")
        if "question" in dims:
            dims = dims[: dims.index("question")] + ("step",) + dims[dims.index("question"):]
    return tuple(d for d in dims if d is not None)


def validate(ds: xr.Dataset, kind: str | None = None) -> list[str]:
    """Every way ``ds`` departs from the schema, each as one line naming the variable.

    Parameters
    ----------
    ds : xarray.Dataset
        A cube (as returned by :func:`hotmess.core.cube.open_cube`).
    kind : str, optional
        The expected kind (:data:`KINDS`); default: the cube's own ``outcome_kind``.

    Returns
    -------
    list of str
        Empty when the cube is valid. Checked: the schema version is readable; the kind is
        known and matches; every variable required for the kind exists; every schema
        variable present has the schema's dims (in order, up to the dims it may omit) and
        dtype; ``outcome`` of a probabilities cube has no negative entries and each draw
        that was run sums to 1 over its options; token counts are non-negative.
    """
    problems: list[str] = []
    try:
        version = version_of(ds)
        if version not in READABLE_VERSIONS:
            problems.append(f"schema_version {version} is not readable by this hotmess "
                            f"(reads {list(READABLE_VERSIONS)}); upgrade hotmess")
    except SchemaError as exc:
        problems.append(str(exc))
    actual = kind_of(ds)
    if kind is not None and kind not in OUTCOME_DIMS:
        return [f"unknown cube kind {kind!r}; known kinds: {list(KINDS)}"]
    if actual is None:
        problems.append("cannot tell the cube's kind: no outcome_kind attribute and no outcome "
                        f"dimension ({[d for d in OUTCOME_DIMS.values() if d]})")
        return problems
    if kind is not None and actual != kind:
        problems.append(f"cube is of kind {actual!r}, expected {kind!r}")
        return problems
    kind = actual
    if kind == "summary":  # derived statistics: no sample variables to check
        return problems
    if kind == "survey":
        for name in ("rank", "entity", "measure"):
            if name not in ds.variables:
                problems.append(f"{name}: missing (required for kind 'survey')")
        return problems
    for var in VARIABLES.values():
        present = var.name in ds.variables
        if not present:
            if kind in var.kinds:
                problems.append(f"{var.name}: missing (required for kind {kind!r}: {var.meaning})")
            continue
        arr = ds[var.name]
        want = _dims_of(var, kind)
        if var.role == "data" or var.name in ("params", "budget_tokens", "target", "subject"):
            got = tuple(arr.dims)
            if var.subset_ok or var.role == "coord":
                extra = [d for d in got if d not in want]
                order_ok = [d for d in want if d in got] == list(got)
                if extra or not order_ok:
                    problems.append(f"{var.name}: dims {got}, expected (a subset of) {want} in that order")
            elif got != want:
                problems.append(f"{var.name}: dims {got}, expected {want}")
        if arr.dtype.kind not in var.dtype:
            problems.append(f"{var.name}: dtype {arr.dtype} not allowed (kinds {var.dtype!r})")
    if "outcome" in ds and kind == "probabilities" and ds["outcome"].dtype.kind == "f":
        out = ds["outcome"].values
        if np.any(out[np.isfinite(out)] < -1e-9):
            problems.append("outcome: negative probabilities")
        sums = np.nansum(out, axis=-1)
        ran = np.isfinite(out).any(axis=-1)
        bad = ran & (np.abs(sums - 1.0) > 1e-6)
        if bad.any():
            problems.append(f"outcome: {int(bad.sum())} draw(s) whose probabilities do not sum to 1")
    for name in ("reasoning_tokens", "output_tokens"):
        if name in ds and ds[name].dtype.kind == "f":
            vals = ds[name].values
            if np.any(vals[np.isfinite(vals)] < 0):
                problems.append(f"{name}: negative token counts (unknown counts are NaN)")
    return problems


def check(ds: xr.Dataset, kind: str | None = None, *, source: str = "cube") -> xr.Dataset:
    """Raise :class:`SchemaError` listing every problem of ``ds`` (see :func:`validate`);
    return ``ds`` when it is valid. ``source`` names the cube (path or experiment)."""
    problems = validate(ds, kind)
    if problems:
        raise SchemaError(f"{source} does not follow the cube schema: " + "; ".join(problems), problems)
    return ds


def require(
    ds: xr.Dataset,
    variables: Iterable[str],
    *,
    experiment: str,
    command: str | None = None,
    needed_by: str = "",
) -> xr.Dataset:
    """Check that ``ds`` holds every one of ``variables`` (data variables or coordinates).

    Parameters
    ----------
    ds : xarray.Dataset
    variables : iterable of str
    experiment : str
        The experiment whose cube this is (named in the message).
    command : str, optional
        The command that produces a cube with these variables (default:
        ``hotmess run experiment=<experiment>``).
    needed_by : str
        Who needs them (e.g. ``"figure fig05"``), for the message.

    Returns
    -------
    xarray.Dataset
        ``ds`` unchanged.

    Raises
    ------
    MissingVariableError
        One line: the experiment, each missing variable, and the command.
    """
    missing = [v for v in variables if v not in ds.variables]
    if missing:
        cmd = command or f"hotmess run experiment={experiment}"
        who = f"{needed_by} needs" if needed_by else "needs"
        raise MissingVariableError(
            f"{who} variable(s) {missing} that the {experiment!r} cube does not hold; "
            f"remake it with `{cmd}`", [f"{v}: missing" for v in missing])
    return ds


def upgrade(ds: xr.Dataset) -> xr.Dataset:
    """Bring a cube of an older schema version to the current one, in memory.

    Version 1 (unversioned) cubes have the same variables; only the ``schema_version``
    attribute (and ``outcome_kind`` where it can be inferred) is added.

    Raises
    ------
    SchemaError
        A version this hotmess cannot read (newer than :data:`SCHEMA_VERSION`), naming both.
    """
    version = version_of(ds)
    if version > SCHEMA_VERSION:
        raise SchemaError(f"cube has schema_version {version}, newer than this hotmess reads "
                          f"({SCHEMA_VERSION}); upgrade hotmess")
    if version == SCHEMA_VERSION:
        return ds
    ds = ds.copy()
    kind = kind_of(ds)
    if kind is not None:
        ds.attrs.setdefault("outcome_kind", kind)
    ds.attrs["schema_version"] = str(SCHEMA_VERSION)
    ds.attrs["schema_upgraded_from"] = str(version)
    return ds


def describe() -> str:
    """The schema as a Markdown table (used by ``docs/design.md`` and ``hotmess schema``)."""
    rows = ["| variable | dims | units | role | required for | meaning |", "|---|---|---|---|---|---|"]
    for v in VARIABLES.values():
        rows.append(f"| `{v.name}` | {', '.join(v.dims)} | {v.units} | {v.role} | "
                    f"{', '.join(v.kinds) or 'optional'} | {v.meaning} |")
    return "\n".join(rows)
