"""Conformance checks of a task (docs/design.md, "Plugins: backends, tasks, embedders,
producers, figures"; :class:`hotmess.core.task.Task`)."""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from hotmess.core.schema import OUTCOME_DIMS
from hotmess.core.types import (
    DrawResult,
    Outcome,
    Question,
    SampleRequest,
    SamplingParams,
)
from hotmess.testing._common import check_provenance, fail

#: Unicode blocks of the random garbage text: no ASCII, so no option letter can be parsed
#: from it (Greek, Cyrillic, arrows, box drawing, CJK, emoji).
_BLOCKS = ((0x0391, 0x03C9), (0x0410, 0x044F), (0x2190, 0x21FF), (0x2500, 0x257F),
           (0x4E00, 0x4FFF), (0x1F300, 0x1F5FF))


def random_unicode(n: int, seed: int = 0) -> str:
    """``n`` characters of non-ASCII text (with spaces and newlines), reproducible by seed."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.12:
            out.append(" ")
        elif r < 0.14:
            out.append("\n")
        else:
            lo, hi = rng.choice(_BLOCKS)
            out.append(chr(rng.randint(lo, hi)))
    return "".join(out)


def garbage_results(request: SampleRequest, *, open_ended: bool = False) -> list[tuple[str, DrawResult, bool]]:
    """Model output no task can read, as ``(name, result, must_be_format_error)``:
    empty text; random unicode; 100,000 characters of it; the answer prefix followed by
    garbage, cut at ``max_tokens`` (a format error unless ``open_ended``: for an open-ended
    task any text after the prefix is an answer); a failed draw (finish reason ``"error"``; its format
    flag is not checked: the engine records no outcome for it); and log-probs that are all
    ``-inf`` or name no option."""
    seed = request.seeds[0]
    labels = request.option_labels or ("A", "B")
    u = random_unicode
    return [
        ("empty text", DrawResult(text="", reasoning="", seed=seed), True),
        ("random unicode", DrawResult(text=u(300, 1), reasoning=u(300, 2), output_tokens=40,
                                      reasoning_tokens=20, seed=seed), True),
        ("huge text", DrawResult(text=u(100_000, 3), reasoning=u(100_000, 4), output_tokens=60_000,
                                 reasoning_tokens=30_000, finish_reason="budget", seed=seed), True),
        ("answer prefix then garbage", DrawResult(text=f"{request.answer_prefix} {u(20, 5)}",
                                                  reasoning=u(50, 6), finish_reason="length", seed=seed),
         not open_ended),
        ("failed draw", DrawResult(text="", finish_reason="error", error="connection reset (conformance kit)",
                                   seed=seed), False),
        ("log-probs all -inf", DrawResult(text="", logprobs={lab: float("-inf") for lab in labels}, seed=seed), True),
        ("log-probs of no option", DrawResult(text="", logprobs={"\u2603": 0.0}, seed=seed), True),
    ]


def _check_vector(what: str, task: Any, q: Question, out: Any, *, failed: bool) -> np.ndarray:
    if not isinstance(out, Outcome):
        fail(what, f"score() must return an Outcome, got {type(out).__name__}")
    try:
        vec = np.asarray(out.vector, dtype=float)
    except (TypeError, ValueError) as exc:
        fail(what, f"Outcome.vector is not numeric: {exc}")
    if vec.shape != (q.n_outcomes,):
        fail(what, f"Outcome.vector has shape {vec.shape}, expected ({q.n_outcomes},) = (question.n_outcomes,)")
    if not isinstance(out.format_error, bool | np.bool_):
        fail(what, f"Outcome.format_error must be a bool, got {out.format_error!r}")
    if not isinstance(out.answer, str):
        fail(what, f"Outcome.answer must be a str, got {type(out.answer).__name__}")
    if failed:
        return vec
    kind = task.outcome_kind
    if kind == "probabilities":
        if not np.all(np.isfinite(vec)):
            fail(what, f"probability vector has non-finite entries: {vec.tolist()}")
        if np.any(vec < -1e-12):
            fail(what, f"probability vector has negative entries: {vec.tolist()}")
        if abs(vec.sum() - 1.0) > 1e-6:
            fail(what, f"probability vector sums to {vec.sum():.9g}, not 1: {vec.tolist()}")
    elif kind == "tests":
        if not np.all(np.isin(vec, (0.0, 1.0))):
            fail(what, f"a pass/fail vector holds only 0 and 1, got {vec.tolist()}")
    elif kind == "embedding":
        if not (np.all(np.isfinite(vec)) or (out.format_error and np.all(np.isnan(vec)))):
            fail(what, "an embedding must be finite (or all NaN for a format error)")
    elif kind == "point":
        if not np.all(np.isfinite(vec)):
            fail(what, f"a point must be finite, got {vec.tolist()}")
    return vec


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def check_questions(task: Any, what: str) -> list[Question]:
    """Questions: a non-empty list of :class:`Question` with unique, stable ids (two calls
    give the same ids, subjects, targets and sizes), positive ``n_outcomes``, str subjects,
    the ``question_coords`` keys in every question's data, and ``outcome_labels`` of the
    right length (max ``n_outcomes``) with no duplicate."""
    qs = task.questions()
    if not isinstance(qs, list) or not qs:
        fail(what, f"questions() must return a non-empty list, got {type(qs).__name__} of length "
                   f"{len(qs) if hasattr(qs, '__len__') else '?'}")
    for i, q in enumerate(qs):
        if not isinstance(q, Question):
            fail(what, f"questions()[{i}] is a {type(q).__name__}, not a Question")
        if not isinstance(q.id, str) or not q.id:
            fail(what, f"questions()[{i}].id must be a non-empty str, got {q.id!r}")
        if not isinstance(q.subject, str):
            fail(what, f"question {q.id!r}: subject must be a str, got {q.subject!r}")
        if not isinstance(q.n_outcomes, int | np.integer) or isinstance(q.n_outcomes, bool) or q.n_outcomes < 1:
            fail(what, f"question {q.id!r}: n_outcomes must be a positive int, got {q.n_outcomes!r}")
        for key in getattr(task, "question_coords", ()):
            if key not in q.data:
                fail(what, f"question {q.id!r}: question_coords names {key!r}, which its data lacks")
    ids = [q.id for q in qs]
    dup = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if dup:
        fail(what, f"question ids are not unique: {dup[:5]}")
    again = task.questions()
    key = [(q.id, q.subject, repr(q.target), int(q.n_outcomes)) for q in qs]
    key2 = [(q.id, q.subject, repr(q.target), int(q.n_outcomes)) for q in again]
    if key != key2:
        diff = next((i for i, (a, b) in enumerate(zip(key, key2, strict=False)) if a != b), min(len(key), len(key2)))
        fail(what, f"questions() is not stable: two calls differ at position {diff} "
                   f"({key[diff] if diff < len(key) else None} vs {key2[diff] if diff < len(key2) else None})")
    labels = task.outcome_labels(qs)
    if not isinstance(labels, list | tuple) or not all(isinstance(x, str) for x in labels):
        fail(what, f"outcome_labels() must be a list of str, got {labels!r}"[:300])
    n = max(int(q.n_outcomes) for q in qs)
    if len(labels) != n:
        fail(what, f"outcome_labels() has {len(labels)} labels, but the largest n_outcomes is {n}")
    if len(set(labels)) != len(labels):
        fail(what, f"outcome_labels() has duplicates: {labels}"[:300])
    return qs


def _check_request(what: str, req: Any, q: Question, task: Any, seeds, budget, effort, sampling, chat) -> None:
    if not isinstance(req, SampleRequest):
        fail(what, f"build_request() must return a SampleRequest, got {type(req).__name__}")
    if req.question_id != q.id:
        fail(what, f"request.question_id {req.question_id!r} is not the question's id {q.id!r}")
    if tuple(req.seeds) != tuple(seeds):
        fail(what, f"request.seeds {req.seeds} are not the {len(seeds)} seeds given {tuple(seeds)} "
                   "(one draw per seed, in order)")
    if req.budget != budget or req.effort != effort:
        fail(what, f"request budget/effort {req.budget!r}/{req.effort!r} are not the ones given {budget!r}/{effort!r}")
    if req.sampling != sampling:
        fail(what, f"request.sampling {req.sampling} is not the SamplingParams given {sampling}")
    if req.prompt is not None and (not isinstance(req.prompt, str) or not req.prompt.strip()):
        fail(what, "request.prompt must be a non-empty str")
    if req.messages is not None:
        if not req.messages:
            fail(what, "request.messages is empty")
        for m in req.messages:
            if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                fail(what, f"each chat message must be a dict with str 'role' and 'content', got {m!r}"[:300])
            if m["role"] not in ("system", "user", "assistant", "developer"):
                fail(what, f"unknown chat role {m['role']!r}")
    if not chat and req.prompt is None:
        fail(what, "chat=False (a completion model) but the request has chat messages and no prompt")
    if not isinstance(req.answer_prefix, str):
        fail(what, "request.answer_prefix must be a str")
    if req.option_labels and task.outcome_kind == "probabilities" and len(req.option_labels) != q.n_outcomes:
        fail(what, f"request.option_labels {req.option_labels} has {len(req.option_labels)} labels for "
                   f"{q.n_outcomes} outcomes")


def check_task(
    task: Any, *, n_questions: int = 3, seeds: Sequence[int] = (11, 12, 13), budget: int | None = 16,
    sampling: SamplingParams | None = None, chat: bool | str = "both", format_errors: bool = True,
) -> list[Question]:
    """Run a task through the task contract.

    Checks the attributes (``outcome_kind`` a kind of :data:`hotmess.core.schema.OUTCOME_DIMS`
    with an outcome dimension), ``info()`` (a JSON-serialisable dict without credentials or
    home paths) and the questions (:func:`check_questions`). Then, on the first
    ``n_questions`` questions:

    * ``build_request`` returns a valid :class:`SampleRequest` carrying the question id, the
      given seeds (``len(seeds)`` draws), budget, effort and sampling; for ``chat=False`` a raw
      prompt; for a multiple-choice task one option label per outcome;
    * it is a pure function of its arguments: the same arguments give an equal request, also
      after building requests for other questions and contexts; and the prompt does not
      depend on the draw seeds (every model sees the same context for the same draw);
    * ``score`` never raises on :func:`garbage_results`, returns an :class:`Outcome` whose
      vector has ``n_outcomes`` entries (a probability vector: finite, non-negative, sums to
      1; a pass/fail vector: 0/1; an embedding or point: finite, an embedding may be all NaN
      for a format error), sets ``format_error`` for garbage (if ``format_errors``; for an
      embedding task, text after the answer prefix counts as an answer), gives
      the same outcome twice, and does not modify the result;
    * ``score_batch`` (the engine calls it; the default loops over ``score``) agrees with
      ``score`` draw by draw.

    Parameters
    ----------
    task : hotmess.core.task.Task
    n_questions : int
        How many questions get the request and scoring checks.
    seeds : sequence of int
        Draw seeds of the built requests.
    budget : int or None
        Reasoning budget passed to ``build_request`` (tokens).
    sampling : SamplingParams, optional
    chat : bool or "both"
        Which ``chat`` values to build requests for.
    format_errors : bool
        Require ``format_error=True`` for garbage output.

    Returns
    -------
    list of Question
        All questions of the task.

    Raises
    ------
    AssertionError
        A contract violation (the message names the question and the rule).
    """
    what = f"task {getattr(task, 'name', type(task).__name__)!r}"
    kind = getattr(task, "outcome_kind", None)
    kinds = sorted(k for k, dim in OUTCOME_DIMS.items() if dim is not None)
    if kind not in kinds:
        fail(what, f"outcome_kind {kind!r} is not one of {kinds}")
    check_provenance(what, task.info(), strings_only=False)
    qs = check_questions(task, what)
    sampling = sampling or SamplingParams(temperature=0.7, top_p=0.9, top_k=40, max_tokens=12)
    chats = (False, True) if chat == "both" else (bool(chat),)
    seeds = tuple(int(s) for s in seeds)
    other = tuple(s + 1000 for s in seeds)
    for q in qs[:n_questions]:
        for c in chats:
            w = f"{what}, question {q.id!r}, chat={c}"
            args = dict(context=0, context_seed=12345, seeds=seeds, budget=budget, effort=None,
                        sampling=sampling, chat=c)
            req = task.build_request(q, **args)
            _check_request(w, req, q, task, seeds, budget, None, sampling, c)
            # state in between: another context of this question, then another question
            task.build_request(q, **{**args, "context": 1, "context_seed": 999})
            task.build_request(qs[-1], **{**args, "context_seed": 4242})
            again = task.build_request(q, **args)
            if again != req:
                fail(w, "build_request is not a pure function of its arguments: the same arguments "
                        "gave a different request (derive few-shot examples from context_seed only, "
                        "never from a shared random state)")
            reseeded = task.build_request(q, **{**args, "seeds": other})
            if (reseeded.prompt, reseeded.messages) != (req.prompt, req.messages):
                fail(w, "the prompt depends on the draw seeds; it may depend on the context "
                        "(context_seed) only, so that draws of a context share one prompt")
        req = task.build_request(q, context=0, context_seed=12345, seeds=seeds, budget=budget,
                                 effort=None, sampling=sampling, chat=chats[0])
        cases = garbage_results(req, open_ended=task.outcome_kind == "embedding")
        outs = []
        for name, result, must_flag in cases:
            w = f"{what}, question {q.id!r}, {name}"
            before = copy.deepcopy(result)
            try:
                out = task.score(q, result)
                out2 = task.score(q, result)
            except Exception as exc:  # noqa: BLE001 - reporting it is the point
                fail(w, f"score() raised {type(exc).__name__}: {exc} (it must never raise on model output; "
                        "return Outcome(fallback, format_error=True))")
            failed = result.finish_reason == "error"
            v = _check_vector(w, task, q, out, failed=failed)
            if not _same(v, np.asarray(out2.vector, dtype=float)) or out.format_error != out2.format_error:
                fail(w, "score() gave different outcomes for the same result twice")
            if result != before:
                fail(w, "score() modified the DrawResult it was given")
            if format_errors and must_flag and not out.format_error:
                fail(w, f"garbage output was not flagged: format_error=False, answer={out.answer!r}, "
                        f"vector={v.tolist()[:8]}")
            outs.append(v)
        batch = getattr(task, "score_batch", None)
        if callable(batch):
            w = f"{what}, question {q.id!r}, score_batch"
            try:
                got = list(batch(q, [r for _, r, _ in cases]))
            except Exception as exc:  # noqa: BLE001
                fail(w, f"raised {type(exc).__name__}: {exc}")
            if len(got) != len(cases):
                fail(w, f"returned {len(got)} outcomes for {len(cases)} results")
            for (name, result, _), o, v in zip(cases, got, outs, strict=True):
                vb = _check_vector(f"{w}, {name}", task, q, o, failed=result.finish_reason == "error")
                if not np.allclose(vb, v, equal_nan=True, atol=1e-6):
                    fail(f"{w}, {name}", "score_batch() and score() disagree")
    return qs
