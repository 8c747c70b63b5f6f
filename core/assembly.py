"""Cube assembly: the per-draw table of one chunk -> a part dataset; parts -> the cube.

A :class:`DrawTable` collects what the sampling loop learns about each draw of one chunk of
questions in one (model, size, budget) cell -- the backend's :class:`DrawResult` and the
task's :class:`Outcome` -- and turns it into a part dataset laid out as the schema says
(:mod:`hotmess.core.schema`). :func:`combine` merges the parts into the cube with the
experiment's provenance and the schema version (``docs/design.md``, "The cube schema").
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core import schema, seeding
from hotmess.core.backend import ModelSpec
from hotmess.core.cube import CubeStore, finish_reason_attrs, provenance
from hotmess.core.experiment import Budget, Experiment
from hotmess.core.types import FINISH_REASONS, DrawResult, Outcome, Question

log = logging.getLogger(__name__)

#: Numeric per-draw variables of every sampled part (NaN where a draw was not run).
NUMERIC_VARS = ("reasoning_tokens", "output_tokens", "finish_reason", "format_error", "latency_s", "seed")
#: Text per-draw variables ("" where a draw was not run or has no such text).
TEXT_VARS = ("answer", "parse_rule", "text", "reasoning_text")
#: Types of ``DrawResult.extra`` values stored as per-draw variables (others are dropped).
EXTRA_TYPES = (bool, int, float, str, np.number, np.bool_)


def token_count(value: int | None) -> float:
    """A token count as stored in the cube: ``None`` (the documented "unknown") and any
    negative value (``-1``, accepted for compatibility) become NaN."""
    return np.nan if value is None or value < 0 else float(value)


class DrawTable:
    """Per-draw values of one chunk of questions in one cell, shape ``(question, draw)``.

    Parameters
    ----------
    n_questions, draws, n_outcomes : int
        The chunk's questions, the experiment's draws, the length of the outcome dim.
    """

    def __init__(self, n_questions: int, draws: int, n_outcomes: int) -> None:
        self.shape = (n_questions, draws)
        self.outcome = np.full((*self.shape, n_outcomes), np.nan)
        self.num = {k: np.full(self.shape, np.nan) for k in NUMERIC_VARS}
        self.txt = {k: np.full(self.shape, "", dtype=object) for k in TEXT_VARS}
        self.extras: dict[str, dict[tuple[int, int], Any]] = {}

    def record(self, qi: int, d: int, seed: int, r: DrawResult, o: Outcome | None, fallback_latency: float) -> None:
        """Store draw ``d`` of question ``qi``: the backend's result ``r`` and its score ``o``
        (ignored for a failed draw, whose outcome stays NaN). ``fallback_latency`` (s) is
        used where the backend reports no latency."""
        self.num["seed"][qi, d] = seed
        self.num["reasoning_tokens"][qi, d] = token_count(r.reasoning_tokens)
        self.num["output_tokens"][qi, d] = token_count(r.output_tokens)
        for key, value in (r.extra or {}).items():
            if isinstance(value, EXTRA_TYPES):
                self.extras.setdefault(key, {})[(qi, d)] = value
        self.num["finish_reason"][qi, d] = FINISH_REASONS.index(r.finish_reason)
        self.num["latency_s"][qi, d] = r.latency_s if np.isfinite(r.latency_s) else fallback_latency
        self.txt["text"][qi, d] = r.text or ""
        self.txt["reasoning_text"][qi, d] = r.reasoning or ""
        if r.finish_reason == "error":
            self.txt["answer"][qi, d] = ""
            self.num["format_error"][qi, d] = np.nan
            return  # a failed draw has no outcome (NaN), but is recorded as failed
        vec = np.asarray(o.vector, dtype=float)
        self.outcome[qi, d, : vec.shape[0]] = vec
        # options beyond this question's own stay NaN in every draw: the metrics read an
        # option that is NaN in all draws of a question as padding (not a missing draw)
        self.num["format_error"][qi, d] = float(bool(o.format_error))
        self.txt["answer"][qi, d] = o.answer or ""
        self.txt["parse_rule"][qi, d] = o.rule or ""

    def to_part(
        self,
        questions: Sequence[Question],
        *,
        spec: ModelSpec,
        budget: Budget,
        outcome_kind: str,
        outcome_labels: Sequence[str],
        seeds_per_context: int,
        question_coords: Sequence[str] = (),
    ) -> xr.Dataset:
        """The part dataset: dims ``question x draw x <outcome dim>``; scalar coordinates
        ``model``, ``size``, ``budget``, ``params``, ``budget_tokens``, ``budget_effort``."""
        odim = schema.outcome_dim(outcome_kind)
        dims = ("question", "draw")
        num, txt = self.num, self.txt
        data_vars = {
            "outcome": (dims + (odim,), self.outcome, {"long_name": f"scored outcome ({outcome_kind})"}),
            "reasoning_tokens": (dims, num["reasoning_tokens"], {"units": "tokens"}),
            "output_tokens": (dims, num["output_tokens"],
                              {"units": "tokens", "long_name": "all generated tokens, reasoning included"}),
            "finish_reason": (dims, num["finish_reason"], finish_reason_attrs()),
            "format_error": (dims, num["format_error"],
                             {"long_name": "1 if the answer could not be parsed (uniform fallback)"}),
            "latency_s": (dims, num["latency_s"], {"units": "s"}),
            "seed": (dims, num["seed"], {"long_name": "sampling seed of the draw", "scheme": seeding.SEED_SCHEME}),
            "answer": (dims, txt["answer"]),
            "parse_rule": (dims, txt["parse_rule"], {"long_name": "answer-parsing rule that produced the answer"}),
            "text": (dims, txt["text"]),
            "reasoning_text": (dims, txt["reasoning_text"]),
        }
        for key, cells in sorted(self.extras.items()):
            name = key if key not in data_vars and key not in ("question", "draw", odim) else f"extra_{key}"
            text = any(isinstance(v, str) for v in cells.values())
            arr = np.full(self.shape, "", dtype=object) if text else np.full(self.shape, np.nan)
            for (qi, d), v in cells.items():
                arr[qi, d] = str(v) if text else float(v)
            data_vars[name] = (dims, arr, {"long_name": f"reported by the backend per draw (DrawResult.extra[{key!r}])"})
        draws = self.shape[1]
        coords = {
            "question": [q.id for q in questions],
            "draw": np.arange(draws),
            odim: list(outcome_labels),
            "subject": ("question", np.array([q.subject for q in questions], dtype=object)),
            "target": ("question", _targets(questions)),
            "context": ("draw", np.arange(draws) // seeds_per_context),
            "model": spec.name,
            "size": spec.size,
            "budget": budget.label,
            "params": spec.params,
            "budget_tokens": float(budget.tokens) if budget.tokens is not None else np.nan,
            "budget_effort": budget.effort or "",
        }
        for key in question_coords:
            vals = [q.data.get(key) for q in questions]
            numeric = all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in vals)
            coords[key] = ("question", np.array(vals, dtype=float) if numeric
                           else np.array(["" if v is None else str(v) for v in vals], dtype=object))
        ds = xr.Dataset(data_vars, coords=coords)
        ds["params"].attrs["units"] = "parameters"
        ds["budget_tokens"].attrs["units"] = "tokens"
        ds["context"].attrs["long_name"] = "few-shot context id of the draw"
        return ds


def _targets(questions: Sequence[Question]) -> np.ndarray:
    targets = [q.target for q in questions]
    vals = np.array(targets, dtype=np.int64 if all(isinstance(t, int | np.integer) for t in targets) else object)
    if vals.dtype == object:
        vals = np.array([str(t) for t in targets], dtype=object)
    return vals


def warn_schema(ds: xr.Dataset, kind: str, source: str) -> None:
    """Log every schema problem of a cube about to be written (one warning each)."""
    for problem in schema.validate(ds, kind):
        log.warning("%s: %s (docs/design.md, 'The cube schema')", source, problem)


def combine(store: CubeStore, exp: Experiment, *, task_info: dict[str, Any], outcome_kind: str,
            question_ids: Sequence[str]) -> Path:
    """Merge the experiment's parts into ``cube.nc`` with its provenance attributes
    (:func:`hotmess.core.cube.provenance`) and the schema stamp (:func:`schema.stamp`).

    Returns
    -------
    pathlib.Path
        The cube's path.
    """
    attrs = provenance(
        exp.config,
        experiment=exp.name,
        task_info=json.dumps(task_info, sort_keys=True, default=str),
        seed_scheme=seeding.SEED_SCHEME,
        experiment_seed=exp.seed,
        seeds_per_context=exp.seeds_per_context,
        outcome_kind=outcome_kind,
    )
    schema.stamp(attrs, outcome_kind)
    ds = store.combine(attrs=attrs, order={**exp.order(), "question": list(question_ids)})
    warn_schema(ds, outcome_kind, str(store.cube_path))
    return store.cube_path


def write_produced(store: CubeStore, exp: Experiment, ds: xr.Dataset, *, kind: str, info: dict[str, Any]) -> Path:
    """Write a producer's cube: provenance attributes (:func:`hotmess.core.cube.provenance`;
    attributes ``ds`` already has win), the schema stamp, then :meth:`CubeStore.write_cube`.

    Returns
    -------
    pathlib.Path
        The cube's path.
    """
    attrs = provenance(exp.config, experiment=exp.name, task_info=json.dumps(info, sort_keys=True, default=str),
                       outcome_kind=kind)
    ds = ds.copy()
    ds.attrs = schema.stamp({**attrs, **ds.attrs}, kind)
    warn_schema(ds, kind, str(store.cube_path))
    return store.write_cube(ds)
