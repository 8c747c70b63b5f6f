"""Fig. 19 as data: the highest-variance questions of every multiple-choice cube, with every
draw's reasoning and answer (``docs/science.md``, "Figures: SWE-bench, model-written evals,
survey, transcripts, report page").

The paper's Fig. 19 shows Sonnet 4 on one model-written-eval question, switching between A
and B on almost every sample; it was picked among the highest-variance items. Here, for every
(cube, model, size, budget) line, questions are ranked by their KL variance
(:func:`hotmess.core.metrics.kl_decomposition`) and the ``top_k`` highest are kept with all
their draws: parsed answer, the option with the highest probability, reasoning and answer
text, token counts, finish reason and format-error flag. The report page
(``figures/index.html``) shows them side by side in its transcript viewer.

The builder is data only (no plot): its JSON is the figure.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from hotmess.core import metrics
from hotmess.core.types import FINISH_REASONS
from hotmess.paper.cells import cells, floats, line_label
from hotmess.paper.claims import threshold_claim
from hotmess.paper.registry import figure

#: Tasks whose cubes are multiple choice (outcome over ``option``).
MC_TASKS = ("mmlu", "gpqa", "mwe_mc")
_FALLBACK = ("cpu_demo", "gpqa_cpu", "gpqa_frontier", "gpqa_ensembling", "gpqa_qwen3", "gpqa_open",
             "mmlu_qwen3", "mmlu_open", "mwe_cpu", "mwe_mc_frontier")


def mc_experiments() -> tuple[str, ...]:
    """Every shipped experiment config whose task is multiple choice (MMLU, GPQA, MWE MC)."""
    try:
        from hotmess.core.hydra_app import CONF_DIR
    except ImportError:  # pragma: no cover - hydra is a core dependency
        return _FALLBACK
    pat = re.compile(r"^\s*-\s*(?:override\s+)?/(?:task|producer)\s*:\s*(\w+)\s*$", re.M)
    found = []
    for path in sorted((Path(CONF_DIR) / "experiment").glob("*.yaml")):
        m = pat.search(path.read_text(encoding="utf-8"))
        if m and m.group(1) in MC_TASKS:
            found.append(path.stem)
    return tuple(found) or _FALLBACK


def _text(arr: xr.DataArray, max_chars: int | None) -> list[str]:
    out = []
    for v in np.asarray(arr.values).ravel():
        s = v if isinstance(v, str) else ("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        out.append(s if not max_chars or len(s) <= max_chars else s[:max_chars] + f" […{len(s) - max_chars} chars cut]")
    return out


def _finish(arr: xr.DataArray) -> list[str]:
    out = []
    for v in np.asarray(arr.values, dtype=float).ravel():
        out.append(FINISH_REASONS[int(v)] if np.isfinite(v) and 0 <= int(v) < len(FINISH_REASONS) else "")
    return out


def question_draws(cell: xr.Dataset, q: int, max_chars: int | None) -> list[dict[str, Any]]:
    """Every draw of question index ``q`` of a cell (dims question x draw x option)."""
    row = cell.isel(question=q)
    probs = row["outcome"]
    ran = probs.notnull().any("option").values
    labels = [str(o) for o in cell["option"].values]
    fe = row["format_error"].values if "format_error" in row else np.zeros(row.sizes["draw"])
    get = {name: (_text(row[name], max_chars) if name in row else [""] * row.sizes["draw"])
           for name in ("answer", "text", "reasoning_text")}
    fin = _finish(row["finish_reason"]) if "finish_reason" in row else [""] * row.sizes["draw"]
    toks = {name: (floats(row[name].values) if name in row else [None] * row.sizes["draw"])
            for name in ("output_tokens", "reasoning_tokens")}
    draws = []
    for d in range(row.sizes["draw"]):
        if not ran[d]:
            continue
        p = probs.values[d]
        ok = np.isfinite(p)
        choice = None
        if not (np.isfinite(fe[d]) and fe[d] == 1) and ok.any():
            choice = labels[int(np.nanargmax(p))]
        draws.append({
            "draw": int(cell["draw"].values[d]), "choice": choice, "answer": get["answer"][d],
            "probabilities": floats(p[ok]), "format_error": bool(np.isfinite(fe[d]) and fe[d] == 1),
            "finish_reason": fin[d], "output_tokens": toks["output_tokens"][d],
            "reasoning_tokens": toks["reasoning_tokens"][d], "reasoning_text": get["reasoning_text"][d],
            "text": get["text"][d],
        })
    return draws


def flip_rate(draws: list[dict[str, Any]]) -> float | None:
    """Share of consecutive draws (in draw order) whose chosen option differs (unparsed counts
    as its own answer); ``None`` with fewer than two draws."""
    if len(draws) < 2:
        return None
    picks = [d["choice"] for d in draws]
    return sum(a != b for a, b in zip(picks, picks[1:], strict=False)) / (len(picks) - 1)


def top_questions(cubes: dict[str, xr.Dataset], top_k: int, max_chars: int | None) -> list[dict[str, Any]]:
    """The ``top_k`` highest-KL-variance questions of every line, with their draws.

    Returns
    -------
    list of dict
        Per line: ``cube, model, size, budget, label, n_questions`` and ``questions``: each
        with ``id, subject, target`` (option label), ``variance, bias, error`` (KL, nats),
        ``rank`` (1 = highest variance), ``answers`` (counts of chosen options),
        ``flip_rate`` and ``draws`` (:func:`question_draws`).
    """
    out = []
    for cube, ds in cubes.items():
        for model, size, budget, cell in cells(ds):
            kl = metrics.kl_decomposition(cell["outcome"], cell["target"])
            var = kl["variance"].values
            order = [int(i) for i in np.argsort(np.where(np.isfinite(var), -var, np.inf), kind="stable")
                     if np.isfinite(var[i])][:top_k]
            labels = [str(o) for o in cell["option"].values]
            qs = []
            for rank, i in enumerate(order, 1):
                draws = question_draws(cell, i, max_chars)
                counts: dict[str, int] = {}
                for d in draws:
                    key = d["choice"] or "unparsed"
                    counts[key] = counts.get(key, 0) + 1
                t = cell["target"].values[i]
                qs.append({
                    "id": str(cell["question"].values[i]),
                    "subject": str(cell["subject"].values[i]) if "subject" in cell.coords else "",
                    "target": labels[int(t)] if np.issubdtype(np.asarray(t).dtype, np.number) and 0 <= int(t) < len(labels)
                    else str(t),
                    "rank": rank, "variance": float(var[i]), "bias": float(kl["bias"].values[i]),
                    "error": float(kl["error"].values[i]), "answers": counts,
                    "flip_rate": flip_rate(draws), "draws": draws,
                })
            out.append({"cube": cube, "model": model, "size": size, "budget": budget,
                        "label": line_label(cube, model, size, budget, len(cubes)),
                        "n_questions": int(np.isfinite(var).sum()), "questions": qs})
    return out


@figure("fig19", cubes=mc_experiments(), need="any", kind="probabilities",
        variables=("outcome", "target", "answer", "text", "reasoning_text", "output_tokens", "finish_reason"),
        options={"top_k": 10, "max_chars": None},
        option_help={"top_k": "highest-variance questions kept per line",
                     "max_chars": "cut each reasoning/answer text to this many characters (None: whole text)"},
        title="Transcripts of the highest-variance questions (Fig. 19)",
        caption="For every multiple-choice cube and line, the questions with the highest KL "
                "variance and all their draws side by side: chosen option, parsed answer, lengths, "
                "finish reason, reasoning and answer text.")
def fig19(cubes: dict[str, xr.Dataset], settings: dict[str, Any]):
    """Fig. 19 (data only). Returns ``(None, {"top_k", "lines": top_questions(...), "claims"})``."""
    top_k = int(settings.get("top_k", 10))
    max_chars = settings.get("max_chars")
    max_chars = int(max_chars) if max_chars else None
    lines = top_questions(cubes, top_k, max_chars)
    rates = {ln["label"]: ln["questions"][0]["flip_rate"] for ln in lines if ln["questions"]}
    known = {k: v for k, v in rates.items() if v is not None}
    best = max(known.values()) if known else None
    claim = threshold_claim(
        "fig19", "among the highest-variance items, a model flips its answer on almost every sample "
        "of one question (Sonnet 4, MWE)",
        "largest share of consecutive draws with a different chosen option, on each line's "
        "highest-variance question (>= 0.5 counts as flipping)",
        best, lambda v: v >= 0.5, enough=bool(known),
        detail=", ".join(f"{k}: {v:.2f}" for k, v in known.items()))
    return None, {"top_k": top_k, "max_chars": max_chars, "lines": lines, "claims": [claim.to_dict()]}
