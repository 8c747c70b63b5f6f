"""Convert Inspect eval logs of SWE-bench runs into a hotmess cube (docs/science.md, "Metrics").

What the SWE-bench scorer reports (inspect_evals 0.26.0, ``swe_bench/scorers.py``)
------------------------------------------------------------------------------------
``swe_bench_scorer`` runs the instance's tests in the sandbox and hands the output to
``swebench.harness.grading.get_eval_report``. Its :class:`inspect_ai.scorer.Score` has

- ``value``: 1.0 if the instance is resolved (every FAIL_TO_PASS and PASS_TO_PASS test
  passes), else 0.0;
- ``explanation``: when the test output could be parsed, exactly::

      PASS_TO_PASS:\\n\\n<json>\\n\\nFAIL_TO_PASS:\\n\\n<json>\\n\\n

  where each ``<json>`` is ``{"success": [test ids], "failure": [test ids]}`` (swebench's
  ``tests_status`` for that category; swebench puts a test in ``success`` if its status is
  PASSED or XFAIL, in ``failure`` if it FAILED, ERRORed or is missing from the log, and in
  neither for other statuses such as SKIPPED); otherwise a text starting "The test phase
  ran to completion but produced no parseable test results" (scored 0.0);
- ``metadata``: ``{"model_patch": <the agent's diff>}``.

The sample's ``metadata`` holds the instance's ``FAIL_TO_PASS`` and ``PASS_TO_PASS`` lists
(the full test lists, decoded from JSON by the task). A sample whose scorer raised (setup
failure, tests killed) carries ``error`` and no score.

The conversion rules (one run = one sample epoch)
--------------------------------------------------
The run's outcome is a pass (1) / fail (0) vector over the instance's tests, ordered
FAIL_TO_PASS first, then PASS_TO_PASS, each in the order of the metadata lists:

1. **Error**: the sample has ``error`` set (or no score from the scorer): the outcome is NaN
   (the run is missing; the metrics skip it), ``finish_reason = "error"``.
2. **Limit hit** (PAPER 1b): the sample has ``limit`` set (message, time, token, working,
   ... limit): the run counts as "nothing changed" -- every PASS_TO_PASS test passes (1),
   every FAIL_TO_PASS test fails (0) -- whatever the scorer found; ``finish_reason =
   "budget"``, ``limit_hit = 1``. The scorer's own vector is kept in ``outcome_scored``.
3. **Scored**: test in ``success`` -> 1, in ``failure`` -> 0; a test in neither list
   ("unreported", e.g. SKIPPED) -> the value of ``unreported`` (default ``"fail"``: 0;
   ``"pass"``: 1; ``"nan"``: NaN, which makes the metrics drop the whole run).
4. **No parseable test results** (score present, explanation not in the format above):
   every test fails (0) and ``format_error = 1`` (the model's patch broke test collection).

Lengths: ``actions`` = tool calls in the sample's assistant messages (the ``submit`` tool
excluded unless ``count_submit``), ``turns`` = assistant messages, ``output_tokens`` and
``reasoning_tokens`` summed over the sample's ``model_usage`` (reasoning NaN where no model
reported it).

The cube: dims ``model x size x budget x question x draw x test`` (question = instance id,
draw = epoch - 1, test = index 0..max T_i - 1, padded with NaN for instances with fewer
tests); per-question coordinates ``subject`` (repo), ``n_tests``, ``n_fail_to_pass``, and
``test_id`` / ``test_category`` over (question, test). Variables are listed in
:func:`records_to_cube`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core.types import FINISH_REASONS

FAIL_TO_PASS = "FAIL_TO_PASS"
PASS_TO_PASS = "PASS_TO_PASS"
CATEGORIES = (FAIL_TO_PASS, PASS_TO_PASS)
#: The scorer's name in inspect logs.
SCORER = "swe_bench_scorer"
UNREPORTED = {"fail": 0.0, "pass": 1.0, "nan": np.nan}
LIMIT_RULE = ("a run that hit a limit (sample.limit set) counts as nothing changed: "
              "PASS_TO_PASS tests pass, FAIL_TO_PASS tests fail (PAPER 1b)")

_HEADER = re.compile(r"^(PASS_TO_PASS|FAIL_TO_PASS):[ \t]*$", re.M)


class ConversionError(ValueError):
    """An eval log cannot be converted (the message names the log, sample and epoch)."""


def parse_tests_status(explanation: str | None) -> dict[str, dict[str, list[str]]] | None:
    """Parse the per-test results out of a ``swe_bench_scorer`` explanation.

    Parameters
    ----------
    explanation : str or None
        ``Score.explanation``.

    Returns
    -------
    dict or None
        ``{"FAIL_TO_PASS": {"success": [...], "failure": [...]}, "PASS_TO_PASS": {...}}``, or
        None when the explanation does not hold both blocks (the scorer found no parseable
        test results).
    """
    if not explanation:
        return None
    out: dict[str, dict[str, list[str]]] = {}
    decoder = json.JSONDecoder()
    for m in _HEADER.finditer(explanation):
        rest = explanation[m.end():]
        start = len(rest) - len(rest.lstrip())
        try:
            value, _ = decoder.raw_decode(rest, start)
        except json.JSONDecodeError:
            return None
        if not isinstance(value, dict):
            return None
        out[m.group(1)] = {
            "success": [str(t) for t in value.get("success", [])],
            "failure": [str(t) for t in value.get("failure", [])],
        }
    if set(out) != set(CATEGORIES):
        return None
    return out


@dataclass
class RunRecord:
    """One SWE-bench run (one sample epoch of an Inspect log), converted.

    Attributes
    ----------
    instance : str
        SWE-bench instance id (the cube's ``question``).
    epoch : int
        1-based epoch (the cube's ``draw`` is ``epoch - 1``).
    tests : list of str
        FAIL_TO_PASS then PASS_TO_PASS test ids.
    n_fail_to_pass : int
    outcome : numpy.ndarray, shape (len(tests),)
        Pass/fail after the rules of the module docstring.
    outcome_scored : numpy.ndarray, shape (len(tests),)
        What the scorer reported (rule 3/4), NaN where nothing was scored.
    """

    instance: str
    epoch: int
    repo: str
    tests: list[str]
    n_fail_to_pass: int
    outcome: np.ndarray
    outcome_scored: np.ndarray
    resolved: float
    finish_reason: str
    format_error: float
    limit: str = ""
    error: str = ""
    actions: float = np.nan
    turns: float = np.nan
    messages: float = np.nan
    output_tokens: float = np.nan
    reasoning_tokens: float = np.nan
    input_tokens: float = np.nan
    working_time_s: float = np.nan
    total_time_s: float = np.nan
    patch: str = ""
    completion: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _test_lists(meta: dict[str, Any], where: str) -> tuple[list[str], list[str]]:
    lists = []
    for cat in CATEGORIES:
        value = meta.get(cat)
        if isinstance(value, str):  # raw dataset rows keep them as JSON text
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConversionError(f"{where}: metadata {cat} is not a JSON list") from None
        if not isinstance(value, list):
            raise ConversionError(f"{where}: sample metadata has no {cat} test list")
        lists.append([str(t) for t in value])
    return lists[0], lists[1]


def _count_tool_calls(messages: Sequence[Any], count_submit: bool) -> tuple[int, int]:
    actions = turns = 0
    for msg in messages:
        if getattr(msg, "role", None) != "assistant":
            continue
        turns += 1
        for call in getattr(msg, "tool_calls", None) or []:
            if count_submit or getattr(call, "function", "") != "submit":
                actions += 1
    return actions, turns


def sample_to_record(
    sample: Any,
    *,
    scorer: str | None = None,
    unreported: str = "fail",
    count_submit: bool = False,
    where: str = "",
) -> RunRecord:
    """Convert one ``inspect_ai.log.EvalSample`` (rules in the module docstring).

    Parameters
    ----------
    sample : inspect_ai.log.EvalSample
    scorer : str, optional
        Name of the score to read; default ``swe_bench_scorer``, or the only score present.
    unreported : {"fail", "pass", "nan"}
        Value of a test the scorer put in neither list.
    count_submit : bool
        Count calls of the ``submit`` tool as actions.
    where : str
        Log name for error messages.

    Raises
    ------
    ConversionError
        The sample has no FAIL_TO_PASS / PASS_TO_PASS lists, or ``unreported`` is unknown.
    """
    if unreported not in UNREPORTED:
        raise ConversionError(f"unreported must be one of {list(UNREPORTED)}, not {unreported!r}")
    where = f"{where}: sample {sample.id!r} epoch {sample.epoch}"
    meta = dict(sample.metadata or {})
    f2p, p2p = _test_lists(meta, where)
    tests = f2p + p2p
    nf = len(f2p)
    nothing_changed = np.array([0.0] * nf + [1.0] * len(p2p))

    scores = sample.scores or {}
    name = scorer or (SCORER if SCORER in scores or len(scores) != 1 else next(iter(scores)))
    score = scores.get(name)
    scored = np.full(len(tests), np.nan)
    resolved = np.nan
    format_error = np.nan
    patch = ""
    if score is not None:
        try:
            resolved = float(score.value)
        except (TypeError, ValueError):
            resolved = np.nan
        patch = str((score.metadata or {}).get("model_patch", "") or "")
        status = parse_tests_status(score.explanation)
        if status is None:
            scored[:] = 0.0
            format_error = 1.0
        else:
            fill = UNREPORTED[unreported]
            for j, (cat, test) in enumerate([(FAIL_TO_PASS, t) for t in f2p] + [(PASS_TO_PASS, t) for t in p2p]):
                st = status[cat]
                scored[j] = 1.0 if test in st["success"] else 0.0 if test in st["failure"] else fill
            format_error = 0.0

    error = ""
    if sample.error is not None:
        error = str(getattr(sample.error, "message", sample.error))
    limit = sample.limit.type if getattr(sample, "limit", None) is not None else ""
    if error or score is None:
        finish, outcome = "error", np.full(len(tests), np.nan)
        error = error or f"no score named {name!r}"
    elif limit:
        finish, outcome = "budget", nothing_changed.copy()
    else:
        finish, outcome = "stop", scored.copy()

    actions, turns = _count_tool_calls(sample.messages or [], count_submit)
    usage = list((sample.model_usage or {}).values())
    reasoning = [u.reasoning_tokens for u in usage if u.reasoning_tokens is not None]
    return RunRecord(
        instance=str(sample.id),
        epoch=int(sample.epoch),
        repo=str(meta.get("repo", "")),
        tests=tests,
        n_fail_to_pass=nf,
        outcome=outcome,
        outcome_scored=scored,
        resolved=resolved,
        finish_reason=finish,
        format_error=format_error,
        limit=limit,
        error=error,
        actions=float(actions),
        turns=float(turns),
        messages=float(len(sample.messages or [])),
        output_tokens=float(sum(u.output_tokens for u in usage)) if usage else np.nan,
        reasoning_tokens=float(sum(reasoning)) if reasoning else np.nan,
        input_tokens=float(sum(u.input_tokens for u in usage)) if usage else np.nan,
        working_time_s=float(sample.working_time) if sample.working_time is not None else np.nan,
        total_time_s=float(sample.total_time) if sample.total_time is not None else np.nan,
        patch=patch,
        completion=str(sample.output.completion if sample.output is not None else ""),
    )


def read_log_records(path: str | os.PathLike, **options: Any) -> tuple[list[RunRecord], dict[str, Any]]:
    """Read every sample of one Inspect eval log (``.eval`` or ``.json``) as RunRecords.

    Samples are streamed (a 500-instance x 30-epoch log does not have to fit in memory).

    Returns
    -------
    records : list of RunRecord
    header : dict
        ``model``, ``task``, ``status``, ``inspect_version``, ``epochs``, ``message_limit``,
        ``time_limit``, ``created`` of the log, for provenance.

    Raises
    ------
    ConversionError
        The log cannot be read, or a sample cannot be converted.
    """
    from inspect_ai.log import read_eval_log, read_eval_log_samples

    path = Path(path)
    try:
        head = read_eval_log(str(path), header_only=True)
    except Exception as exc:  # inspect raises several kinds for unreadable files
        raise ConversionError(f"cannot read inspect log {path}: {exc}") from exc
    cfg = head.eval.config
    header = {
        "log": path.name,
        "model": head.eval.model,
        "task": head.eval.task,
        "status": head.status,
        "inspect_version": head.eval.packages.get("inspect_ai", "") if head.eval.packages else "",
        "epochs": getattr(cfg, "epochs", None),
        "message_limit": getattr(cfg, "message_limit", None),
        "time_limit": getattr(cfg, "time_limit", None),
        "created": head.eval.created,
    }
    records = [
        sample_to_record(s, where=path.name, **options)
        for s in read_eval_log_samples(str(path), all_samples_required=False)
    ]
    return records, header


@dataclass(frozen=True)
class Cell:
    """Cube labels of one log: model family, size and budget labels."""

    model: str
    size: str = "-"
    budget: str = "none"
    params: float = np.nan


def records_to_cube(
    cells: Iterable[tuple[Cell, Sequence[RunRecord]]],
    *,
    draws: int | None = None,
) -> xr.Dataset:
    """Assemble RunRecords of several (model, size, budget) cells into one cube.

    Parameters
    ----------
    cells : iterable of (Cell, records)
        The same cell may appear several times (several logs); a (cell, instance, epoch)
        given twice keeps the last record.
    draws : int, optional
        Size of the ``draw`` dim; default the largest epoch seen.

    Returns
    -------
    xarray.Dataset
        Dims ``model x size x budget x question x draw [x test]``. Variables:
        ``outcome`` (test; pass 1 / fail 0 after the limit rule; NaN = padding or run
        missing), ``outcome_scored`` (test; as scored), ``resolved`` (score value 0/1),
        ``limit_hit`` (0/1), ``finish_reason`` (codes of ``FINISH_REASONS``: stop, budget =
        limit hit, error), ``format_error`` (1 = no parseable test results), ``actions``,
        ``turns``, ``messages`` (counts), ``output_tokens``, ``reasoning_tokens``,
        ``input_tokens`` (tokens), ``working_time_s``, ``total_time_s`` (seconds), and the
        text variables ``limit`` (limit type), ``error``, ``text`` (the agent's patch),
        ``answer`` (the final completion). Cells not run are NaN / "".

    Raises
    ------
    ConversionError
        An instance appears with different test lists in different logs.
    """
    from hotmess.core.cube import finish_reason_attrs

    cells = [(c, list(rs)) for c, rs in cells]
    models = list(dict.fromkeys(c.model for c, _ in cells))
    sizes = list(dict.fromkeys(c.size for c, _ in cells))
    budgets = list(dict.fromkeys(c.budget for c, _ in cells))
    tests: dict[str, tuple[list[str], int, str]] = {}
    for c, recs in cells:
        for r in recs:
            prev = tests.setdefault(r.instance, (r.tests, r.n_fail_to_pass, r.repo))
            if prev[0] != r.tests or prev[1] != r.n_fail_to_pass:
                raise ConversionError(
                    f"instance {r.instance!r} has different FAIL_TO_PASS/PASS_TO_PASS lists in different "
                    f"logs (cell {c.model}/{c.size}/{c.budget}); convert logs of one dataset revision together"
                )
    questions = sorted(tests)
    n_test = max((len(t[0]) for t in tests.values()), default=0)
    n_draw = draws if draws is not None else max((r.epoch for _, rs in cells for r in rs), default=0)
    qi = {q: i for i, q in enumerate(questions)}
    base = (len(models), len(sizes), len(budgets), len(questions), n_draw)
    outcome = np.full((*base, n_test), np.nan)
    scored = np.full((*base, n_test), np.nan)
    num_names = ("resolved", "limit_hit", "finish_reason", "format_error", "actions", "turns", "messages",
                 "output_tokens", "reasoning_tokens", "input_tokens", "working_time_s", "total_time_s")
    num = {k: np.full(base, np.nan) for k in num_names}
    txt = {k: np.full(base, "", dtype=object) for k in ("limit", "error", "text", "answer")}
    params = np.full((len(models), len(sizes)), np.nan)
    for c, recs in cells:
        mi, si, bi = models.index(c.model), sizes.index(c.size), budgets.index(c.budget)
        params[mi, si] = c.params
        for r in recs:
            d = r.epoch - 1
            if not 0 <= d < n_draw:
                raise ConversionError(f"instance {r.instance!r}: epoch {r.epoch} outside 1..{n_draw}")
            idx = (mi, si, bi, qi[r.instance], d)
            outcome[idx][: len(r.tests)] = r.outcome
            scored[idx][: len(r.tests)] = r.outcome_scored
            for k in num_names:
                if k == "finish_reason":
                    num[k][idx] = FINISH_REASONS.index(r.finish_reason)
                elif k == "limit_hit":
                    num[k][idx] = 1.0 if r.limit else 0.0
                else:
                    num[k][idx] = getattr(r, k)
            txt["limit"][idx] = r.limit
            txt["error"][idx] = r.error
            txt["text"][idx] = r.patch
            txt["answer"][idx] = r.completion

    test_id = np.full((len(questions), n_test), "", dtype=object)
    test_cat = np.full((len(questions), n_test), "", dtype=object)
    for q, (tl, nf, _) in tests.items():
        test_id[qi[q], : len(tl)] = tl
        test_cat[qi[q], : len(tl)] = [FAIL_TO_PASS] * nf + [PASS_TO_PASS] * (len(tl) - nf)

    dims = ("model", "size", "budget", "question", "draw")
    units = {"output_tokens": "tokens", "reasoning_tokens": "tokens", "input_tokens": "tokens",
             "working_time_s": "s", "total_time_s": "s", "actions": "tool calls", "turns": "assistant messages",
             "messages": "messages"}
    data_vars: dict[str, Any] = {
        "outcome": (dims + ("test",), outcome,
                    {"long_name": "test passes (1) / fails (0) in the run, limit rule applied", "rule": LIMIT_RULE}),
        "outcome_scored": (dims + ("test",), scored, {"long_name": "test passes (1) / fails (0) as scored"}),
    }
    for k in num_names:
        attrs = {"units": units[k]} if k in units else {}
        if k == "finish_reason":
            attrs = finish_reason_attrs()
        data_vars[k] = (dims, num[k], attrs)
    data_vars["format_error"][2]["long_name"] = "1 = the scorer reported no parseable test results"
    data_vars["limit_hit"][2]["long_name"] = "1 = the run hit a limit (message/time/token ...)"
    for k, v in txt.items():
        data_vars[k] = (dims, v)
    coords = {
        "model": models,
        "size": sizes,
        "budget": budgets,
        "question": np.array(questions, dtype=object),
        "draw": np.arange(n_draw),
        "test": np.arange(n_test),
        "params": (("model", "size"), params, {"units": "parameters"}),
        "subject": ("question", np.array([tests[q][2] for q in questions], dtype=object)),
        "target": ("question", np.array(["all tests pass"] * len(questions), dtype=object)),
        "n_tests": ("question", np.array([len(tests[q][0]) for q in questions], dtype=np.int64)),
        "n_fail_to_pass": ("question", np.array([tests[q][1] for q in questions], dtype=np.int64)),
        "test_id": (("question", "test"), test_id),
        "test_category": (("question", "test"), test_cat),
    }
    return xr.Dataset(data_vars, coords=coords)


def logs_to_cube(
    logs: Iterable[tuple[Cell, str | os.PathLike]],
    *,
    draws: int | None = None,
    unreported: str = "fail",
    count_submit: bool = False,
    scorer: str | None = None,
) -> xr.Dataset:
    """Convert Inspect eval logs into one cube (rules in the module docstring).

    Parameters
    ----------
    logs : iterable of (Cell, path)
        Each log's cube labels and its path.
    draws, unreported, count_submit, scorer
        See :func:`records_to_cube` and :func:`sample_to_record`.

    Returns
    -------
    xarray.Dataset
        The cube (:func:`records_to_cube`); attrs ``conversion`` (the rules, as JSON) and
        ``inspect_logs`` (each log's header, as JSON).
    """
    cells, headers = [], []
    for cell, path in logs:
        recs, head = read_log_records(path, unreported=unreported, count_submit=count_submit, scorer=scorer)
        cells.append((cell, recs))
        headers.append({"cell": [cell.model, cell.size, cell.budget], **head})
    ds = records_to_cube(cells, draws=draws)
    ds.attrs["conversion"] = json.dumps({
        "limit_rule": LIMIT_RULE, "unreported_tests": unreported, "count_submit": count_submit,
        "test_order": "FAIL_TO_PASS then PASS_TO_PASS, metadata order", "scorer": scorer or SCORER,
    }, sort_keys=True)
    ds.attrs["inspect_logs"] = json.dumps(headers, sort_keys=True, default=str)
    return ds
