"""Import lm-evaluation-harness ``--log_samples`` output as a cube.

Input: ``samples_<task>_<timestamp>.jsonl`` files (or folders holding them, searched
recursively); the ``results_<timestamp>.json`` beside a samples file (same timestamp) gives
the run's config: model args, parameter count, seeds, lm-eval version and the task's
``output_type``. Passing a results file imports the samples files of its run.

Rules
-----
- one document = one question, id ``<task>/<doc_id>``; ``subject`` = the document's
  ``subject`` field, else the task name (several tasks imported together share one cube as
  different questions: import them separately to report them separately);
- the cell: ``--model`` / ``--size`` / ``--budget`` / ``--params`` labels, else model = the
  last path component of ``pretrained`` (or the model name), size ``-``, budget ``none``,
  params = the results file's ``model_num_parameters``;
- draws: a run with ``repeats: N`` gives N draws per document (``resps`` holds them in
  order); several runs of one task in one cell are stacked in the order (torch seed,
  timestamp, file name), draws numbered on; per draw ``seed`` = the run's torch seed,
  ``fewshot_seed`` = the run's few-shot seed, ``run`` = the run's position in that order;
- ``generate_until`` tasks: the options are the document's ``choices`` (or ``options``) list,
  labels ``A``..; each generation is parsed with hotmess's answer extraction
  (:func:`hotmess.plugins.mc.parsing.extract_answer`, rules recorded in ``parse_rule``); an
  unparseable answer is the uniform vector with ``format_error`` = 1;
- ``multiple_choice`` (log-likelihood) tasks: the options are the requests' continuations
  (labels ``A``.. by position, texts in ``option_text``); the outcome is the softmax over
  options of the summed continuation log-likelihoods (``length_norm=False``, lm-eval's
  ``acc``) or of the log-likelihoods divided by the continuation's length in characters
  (``length_norm=True``, lm-eval's ``acc_norm``); never a format error;
- the target: the sample's ``target`` as an index, a letter or an option's text.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
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

_SAMPLES_RE = re.compile(r"^samples_(?P<task>.+)_(?P<stamp>\d{4}-\d{2}-\d{2}T[\d.-]+)\.jsonl$")
_RESULTS_RE = re.compile(r"^results_(?P<stamp>\d{4}-\d{2}-\d{2}T[\d.-]+)\.json$")
LOGLIK = "multiple_choice"
GENERATE = "generate_until"


def find_files(paths: list[str | Path]) -> list[Path]:
    """The samples files named by ``paths`` (files, folders, results files), sorted.

    Raises
    ------
    ImportFailure
        A path that does not exist, a folder with no samples file, a results file without
        samples files beside it.
    """
    out: set[Path] = set()
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.rglob("samples_*.jsonl"))
            if not found:
                raise ImportFailure(f"{p}: no lm-eval samples_<task>_<date>.jsonl file in this folder")
            out.update(found)
        elif not p.exists():
            raise ImportFailure(f"{p}: no such file")
        elif _RESULTS_RE.match(p.name):
            stamp = _RESULTS_RE.match(p.name)["stamp"]
            found = sorted(p.parent.glob(f"samples_*_{stamp}.jsonl"))
            if not found:
                raise ImportFailure(f"{p}: no samples_*_{stamp}.jsonl beside this results file "
                                    f"(was lm_eval run with --log_samples?)")
            out.update(found)
        else:
            out.add(p)
    return sorted(out, key=lambda x: (x.name, str(x)))


def _results_for(path: Path) -> tuple[dict[str, Any], Path | None]:
    m = _SAMPLES_RE.match(path.name)
    if not m:
        return {}, None
    res = path.parent / f"results_{m['stamp']}.json"
    if not res.is_file():
        return {}, None
    try:
        return json.loads(res.read_text(encoding="utf-8")), res
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportFailure(f"{res}: not a readable lm-eval results file ({exc})") from None


def read_samples(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """The sample records of one samples file as ``(line, record)``.

    Raises
    ------
    ImportFailure
        Empty file, a line that is not JSON (e.g. truncated), a record without ``doc_id``,
        ``target`` and ``resps`` (a file of another format).
    """
    if path.stat().st_size == 0:
        raise ImportFailure(f"{path}: empty file")
    out = []
    try:
        fh = open(path, encoding="utf-8")
        lines = list(fh)
        fh.close()
    except UnicodeDecodeError:
        raise ImportFailure(f"{path}: not a text file (lm-eval samples are JSON lines)") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFailure(f"{path}:{n}: not a JSON line ({exc.msg}; truncated?)") from None
        if not isinstance(rec, dict) or not {"doc_id", "target", "resps"} <= set(rec):
            raise ImportFailure(f"{path}:{n}: not an lm-eval sample record (needs doc_id, target, resps; "
                                f"is this a --log_samples samples_<task>_<date>.jsonl file?)")
        out.append((n, rec))
    if not out:
        raise ImportFailure(f"{path}: no sample records")
    return out


def _output_type(rec: dict[str, Any], config: dict[str, Any]) -> str:
    if config.get("output_type"):
        return str(config["output_type"])
    first = rec["resps"][0][0] if rec["resps"] and rec["resps"][0] else None
    return LOGLIK if isinstance(first, list | tuple) else GENERATE


def _continuations(rec: dict[str, Any]) -> list[str]:
    args = rec.get("arguments")
    if isinstance(args, dict):  # lm-eval >= 0.4.5: {"gen_args_0": {"arg_0": ctx, "arg_1": cont}}
        vals = [args[k] for k in sorted(args, key=lambda k: int(re.sub(r"\D", "", k) or 0))]
        return [str(v.get("arg_1", "")) for v in vals]
    if isinstance(args, list):
        return [str(a[1]) if isinstance(a, list) and len(a) > 1 else "" for a in args]
    return []


def _softmax(x: np.ndarray) -> np.ndarray:
    z = np.exp(x - np.max(x))
    return z / z.sum()


def _run_info(results: dict[str, Any], task: str) -> dict[str, Any]:
    cfg = results.get("config") or {}
    margs = cfg.get("model_args") or {}
    if isinstance(margs, str):
        margs = dict(kv.split("=", 1) for kv in margs.split(",") if "=" in kv)
    return {
        "model": str(margs.get("pretrained") or results.get("model_name") or cfg.get("model") or ""),
        "params": cfg.get("model_num_parameters"),
        "torch_seed": cfg.get("torch_seed"),
        "fewshot_seed": cfg.get("fewshot_seed"),
        "lm_eval_version": str(results.get("lm_eval_version") or ""),
        "task_config": (results.get("configs") or {}).get(task) or {},
        "date": results.get("date"),
    }


def _num(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def import_lm_eval(paths: list[str | Path], *, model: str | None = None, size: str = "-",
                   budget: str = "none", params: float = math.nan,
                   length_norm: bool = False) -> xr.Dataset:
    """Import lm-eval ``--log_samples`` output into one ``probabilities`` cube (module rules).

    Parameters
    ----------
    paths : list of path
        Samples files, results files or folders.
    model, size, budget, params
        Cell labels for every file (default: from the results file, module docstring).
    length_norm : bool
        Log-likelihood tasks: divide each option's log-likelihood by its length in characters
        before the softmax.

    Returns
    -------
    xarray.Dataset
        See :func:`hotmess.plugins.importers.common.records_to_cube`; extra per-draw
        variables ``run``, ``fewshot_seed``; attrs ``lm_eval_runs`` (JSON: per file the task,
        output type, seeds, repeats, model args).

    Raises
    ------
    ImportFailure
        One line naming the file, line and document.
    """
    from hotmess.plugins.mc.parsing import extract_answer
    from hotmess.plugins.mc.scoring import outcome_from_choice

    files = find_files(paths)
    runs = []
    for f in files:
        results, res_path = _results_for(f)
        m = _SAMPLES_RE.match(f.name)
        task = m["task"] if m else f.stem
        info = _run_info(results, task)
        labels = Labels(model or (Path(info["model"]).name if info["model"] else "model"), size, budget,
                        float(params) if not math.isnan(params) else _num(info["params"]))
        runs.append((labels, task, info, f, res_path))
    runs.sort(key=lambda r: (r[0].model, r[0].size, r[0].budget, r[1],
                             _num(r[2]["torch_seed"]) if r[2]["torch_seed"] is not None else math.inf,
                             r[3].name))
    records: list[DrawRecord] = []
    offsets: dict[tuple, int] = {}
    run_index: dict[tuple, int] = {}
    meta = []
    for labels, task, info, f, res_path in runs:
        key = (labels, task)
        offset, ridx = offsets.get(key, 0), run_index.get(key, 0)
        kind = None
        n_draws = 0
        for line, rec in read_samples(f):
            where = f"{f}:{line} (doc_id {rec['doc_id']})"
            kind = kind or _output_type(rec, info["task_config"])
            doc = rec.get("doc") if isinstance(rec.get("doc"), dict) else {}
            common = dict(labels=labels, question=f"{task}/{rec['doc_id']}", where=where,
                          subject=str(doc.get("subject") or task),
                          seed=_num(info["torch_seed"]), extra={
                              "run": float(ridx), "fewshot_seed": _num(info["fewshot_seed"])})
            if kind == LOGLIK:
                conts = _continuations(rec)
                resps = rec["resps"]
                n = len(resps)
                labs = option_labels(n, where)
                if conts and len(conts) != n:
                    raise ImportFailure(f"{where}: {len(conts)} requests but {n} responses")
                tgt = target_index(rec["target"], n, where, [c.strip() for c in conts])
                reps = {len(r) for r in resps}
                if len(reps) != 1:
                    raise ImportFailure(f"{where}: options answered a different number of times {sorted(reps)}")
                for d in range(reps.pop()):
                    try:
                        ll = np.array([float(resps[i][d][0]) for i in range(n)])
                    except (TypeError, ValueError, IndexError):
                        raise ImportFailure(f"{where}: option log-likelihoods are not numbers") from None
                    if length_norm:
                        ll = ll / np.array([max(len(c), 1) for c in (conts or [""] * n)], dtype=float)
                    if not np.isfinite(ll).all():
                        raise ImportFailure(f"{where}: non-finite option log-likelihoods {ll.tolist()}")
                    p = _softmax(ll)
                    top = int(np.argmax(p))
                    records.append(DrawRecord(
                        draw=offset + d, target=tgt, n_options=n, outcome=p, answer=labs[top],
                        parse_rule="loglik_norm" if length_norm else "loglik", **common))
                    n_draws = max(n_draws, d + 1)
            elif kind == GENERATE:
                choices = doc.get("choices", doc.get("options"))
                if not isinstance(choices, list) or len(choices) < 2:
                    raise ImportFailure(f"{where}: the document has no 'choices' list, so its options are "
                                        f"unknown (hotmess imports multiple-choice generations)")
                texts = [str(c) for c in choices]
                labs = option_labels(len(texts), where)
                tgt = target_index(rec["target"], len(texts), where, texts)
                gens = rec["resps"][0] if rec["resps"] else []
                if isinstance(gens, str):
                    gens = [gens]
                for d, text in enumerate(gens):
                    choice = extract_answer(str(text), "", labs, option_texts=texts)
                    oc = outcome_from_choice(choice, labs)
                    records.append(DrawRecord(
                        draw=offset + d, target=tgt, n_options=len(texts), outcome=oc.vector,
                        format_error=float(oc.format_error), answer=oc.answer, parse_rule=oc.rule,
                        text=str(text), **common))
                    n_draws = max(n_draws, d + 1)
            else:
                raise ImportFailure(f"{where}: output_type {kind!r} is not multiple choice "
                                    f"({LOGLIK} or {GENERATE})")
        offsets[key] = offset + n_draws
        run_index[key] = ridx + 1
        tc = info["task_config"]
        meta.append({"samples": f.name, "results": res_path.name if res_path else None, "task": task,
                     "output_type": kind, "cell": [labels.model, labels.size, labels.budget],
                     "draws": [offset, offset + n_draws], "torch_seed": info["torch_seed"],
                     "fewshot_seed": info["fewshot_seed"], "repeats": tc.get("repeats"),
                     "generation_kwargs": tc.get("generation_kwargs"), "num_fewshot": tc.get("num_fewshot"),
                     "model_args": info["model"]})
    versions = sorted({r[2]["lm_eval_version"] for r in runs} - {""})
    sources = files + sorted({r[4] for r in runs if r[4] is not None})
    dates = [_num(r[2]["date"]) for r in runs if r[2]["date"] is not None]
    created = (_dt.datetime.fromtimestamp(int(max(dates)), _dt.UTC).isoformat(timespec="seconds")
               if dates and all(math.isfinite(d) for d in dates) and len(dates) == len(runs) else None)
    attrs = source_attrs(sources, tool="lm-evaluation-harness", tool_version=", ".join(versions), created=created,
                         options={"model": model, "size": size, "budget": budget, "params": params,
                                  "length_norm": length_norm},
                         extra={"lm_eval_runs": meta,
                                "loglik_rule": "softmax over options of the summed continuation "
                                + ("log-likelihood / its length in characters" if length_norm
                                   else "log-likelihood (not length-normalised)")})
    ds = records_to_cube(records, source=", ".join(map(str, files)))
    return finish(ds, attrs)
