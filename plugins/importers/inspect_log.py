"""Import Inspect eval logs (``.eval`` and ``.json``) as a cube.

Rules
-----
- one log = one (model, size, budget) cell; the labels come from the command line, else the
  model is the eval spec's model name (``hf/<dir>`` becomes ``hf/<dir name>``), size ``-``,
  budget the generate config's ``reasoning_tokens`` (``none`` without one);
- the sample id is the question (``subject`` = the task name); epochs are draws (epoch *e*
  is draw *e* − 1; several logs of one cell are stacked in the order of their creation time,
  then file name, draws numbered on);
- multiple choice: the options are the sample's ``choices`` (labels ``A``..), the target is
  the sample's target letter; the answer is the scorer's ``answer`` field when it is one
  option letter, otherwise the completion is parsed with hotmess's answer extraction
  (:func:`hotmess.plugins.mc.parsing.extract_answer`; ``answer_from="completion"`` always
  parses). An answer that is none of the options is a format error (uniform vector);
- lengths: ``output_tokens`` and ``reasoning_tokens`` summed over the sample's model usage,
  ``actions`` = the number of assistant messages; ``seed`` = the generate config's seed;
- SWE-bench logs (samples with FAIL_TO_PASS / PASS_TO_PASS metadata) are converted by
  :func:`hotmess.plugins.swebench.convert.logs_to_cube` into a ``tests`` cube.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import xarray as xr

from hotmess.plugins.importers.common import (
    DrawRecord,
    ImportFailure,
    Labels,
    finish,
    option_labels,
    records_to_cube,
    source_attrs,
    target_index,
)

ANSWER_FROM = ("scorer", "completion")


def _header(path: Path):
    from inspect_ai.log import read_eval_log

    if not path.is_file():
        raise ImportFailure(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImportFailure(f"{path}: empty file")
    if path.suffix not in (".eval", ".json"):
        raise ImportFailure(f"{path}: not an Inspect log (expected a .eval or .json file)")
    try:
        return read_eval_log(str(path), header_only=True)
    except Exception as exc:  # inspect raises several kinds for files of another format
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ImportFailure(f"{path}: not a readable Inspect log ({first})") from None


def _samples(path: Path):
    from inspect_ai.log import read_eval_log_samples

    try:
        yield from read_eval_log_samples(str(path), all_samples_required=False)
    except ImportFailure:
        raise
    except Exception as exc:
        raise ImportFailure(f"{path}: cannot read the log's samples ({str(exc).strip()[:200]})") from None


def _model_label(name: str) -> str:
    provider, _, rest = name.partition("/")
    if rest and ("/" in rest or Path(rest).exists()):
        return f"{provider}/{Path(rest.rstrip('/')).name}"
    return name


def _completion_parts(sample: Any) -> tuple[str, str]:
    out = sample.output
    if out is None:
        return "", ""
    text = str(out.completion or "")
    reasoning = []
    msg = getattr(out, "message", None)
    content = getattr(msg, "content", None)
    if isinstance(content, list):
        for part in content:
            if getattr(part, "type", "") == "reasoning":
                reasoning.append(str(getattr(part, "reasoning", "") or ""))
    return text, "\n".join(reasoning)


def _is_swebench(sample: Any) -> bool:
    meta = sample.metadata or {}
    return "FAIL_TO_PASS" in meta and "PASS_TO_PASS" in meta


def sample_record(sample: Any, labels: Labels, draw: int, *, where: str, task: str, seed: float,
                  answer_from: str = "scorer", scorer: str | None = None) -> DrawRecord:
    """One multiple-choice ``inspect_ai.log.EvalSample`` as a draw record (module rules).

    Raises
    ------
    ImportFailure
        The sample has no choices, or its target names no choice.
    """
    from hotmess.plugins.mc.parsing import Choice, extract_answer
    from hotmess.plugins.mc.scoring import outcome_from_choice

    where = f"{where}: sample {sample.id!r} epoch {sample.epoch}"
    choices = list(sample.choices or [])
    if not choices:
        raise ImportFailure(f"{where}: no choices (not a multiple-choice sample; SWE-bench logs are "
                            f"recognised by FAIL_TO_PASS/PASS_TO_PASS metadata)")
    labs = option_labels(len(choices), where)
    tgt = target_index(sample.target, len(choices), where, choices)
    text, reasoning = _completion_parts(sample)
    choice = None
    scores = sample.scores or {}
    if answer_from == "scorer" and scores:
        name = scorer if scorer in scores else next(iter(scores))
        ans = str(getattr(scores[name], "answer", "") or "").strip().upper()
        if ans in labs:
            choice = Choice(ans, "scorer")
    if choice is None:
        choice = extract_answer(text, reasoning, labs, option_texts=choices)
    oc = outcome_from_choice(choice, labs)
    usage = list((sample.model_usage or {}).values())
    reasoning_tok = [u.reasoning_tokens for u in usage if u.reasoning_tokens is not None]
    assistant = sum(1 for m in (sample.messages or []) if getattr(m, "role", "") == "assistant")
    return DrawRecord(
        labels=labels, question=str(sample.id), draw=draw, target=tgt, n_options=len(choices),
        outcome=oc.vector, where=where, format_error=float(oc.format_error), answer=oc.answer,
        parse_rule=oc.rule, text=text, reasoning_text=reasoning, subject=task, seed=seed,
        output_tokens=float(sum(u.output_tokens for u in usage)) if usage else math.nan,
        reasoning_tokens=float(sum(reasoning_tok)) if reasoning_tok else math.nan,
        actions=float(assistant),
        extra={"scored_value": _score_value(scores, scorer)})


def _score_value(scores: dict, scorer: str | None) -> float:
    if not scores:
        return math.nan
    s = scores.get(scorer) if scorer in scores else next(iter(scores.values()))
    v = getattr(s, "value", None)
    if v in ("C", "I"):
        return 1.0 if v == "C" else 0.0
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def import_inspect(paths: list[str | Path], *, model: str | None = None, size: str = "-",
                   budget: str | None = None, params: float = math.nan,
                   answer_from: str = "scorer", scorer: str | None = None) -> xr.Dataset:
    """Import Inspect logs into one cube (rules in the module docstring).

    Parameters
    ----------
    paths : list of path
        ``.eval`` or ``.json`` logs.
    model, size, budget, params
        Cube labels for every log (default: from each log, module docstring).
    answer_from : {"scorer", "completion"}
    scorer : str, optional
        Name of the score to read (default: the first).

    Returns
    -------
    xarray.Dataset
        A ``probabilities`` cube, or a ``tests`` cube for SWE-bench logs.

    Raises
    ------
    ImportFailure
        One line naming the file and sample.
    """
    if answer_from not in ANSWER_FROM:
        raise ImportFailure(f"answer_from must be one of {list(ANSWER_FROM)}, not {answer_from!r}")
    if not paths:
        raise ImportFailure("no Inspect log given")
    heads = []
    for p in paths:
        p = Path(p)
        heads.append((p, _header(p)))
    heads.sort(key=lambda ph: (str(ph[1].eval.created), ph[0].name))
    versions = sorted({str((h.eval.packages or {}).get("inspect_ai", "")) for _, h in heads} - {""})
    options = {"model": model, "size": size, "budget": budget, "params": params,
               "answer_from": answer_from, "scorer": scorer}
    logs_info, records, swe = [], [], []
    offsets: dict[Labels, int] = {}
    for path, head in heads:
        gen = head.eval.model_generate_config
        rtok = getattr(gen, "reasoning_tokens", None)
        seed = getattr(gen, "seed", None)
        labels = Labels(model or _model_label(head.eval.model), size,
                        budget if budget is not None else (str(rtok) if rtok else "none"),
                        float(params), float(rtok) if rtok else math.nan)
        logs_info.append({"log": path.name, "model": head.eval.model, "task": head.eval.task,
                          "status": head.status, "epochs": head.eval.config.epochs,
                          "created": str(head.eval.created), "seed": seed,
                          "cell": [labels.model, labels.size, labels.budget]})
        samples = list(_samples(path))
        if not samples:
            raise ImportFailure(f"{path}: the log holds no samples (status {head.status})")
        if _is_swebench(samples[0]):
            swe.append((labels, path))
            continue
        offset = offsets.get(labels, 0)
        epochs = max(int(s.epoch) for s in samples)
        for s in samples:
            records.append(sample_record(
                s, labels, offset + int(s.epoch) - 1, where=path.name, task=head.eval.task,
                seed=float(seed) if seed is not None else math.nan, answer_from=answer_from,
                scorer=scorer))
        offsets[labels] = offset + epochs
    if swe and records:
        raise ImportFailure(f"{swe[0][1]}: a SWE-bench log imported together with multiple-choice "
                            f"logs; import them into different cubes")
    attrs = source_attrs([p for p, _ in heads], tool="inspect_ai", tool_version=", ".join(versions),
                         options=options, extra={"inspect_logs": logs_info},
                         created=max(str(h.eval.created) for _, h in heads))
    if swe:
        from hotmess.plugins.swebench.convert import Cell, logs_to_cube

        ds = logs_to_cube([(Cell(lab.model, lab.size, lab.budget, lab.params), p) for lab, p in swe])
        ds = ds.assign_coords(budget_tokens=("budget", [math.nan] * ds.sizes["budget"]))
        attrs.update({k: ds.attrs[k] for k in ("conversion",) if k in ds.attrs})
        return finish(ds, attrs, kind="tests")
    return finish(records_to_cube(records, source=", ".join(str(p) for p, _ in heads)), attrs)
