"""Constructed cubes with known answers for the figure tests (SWE-bench per-test pass/fail,
MWE multiple choice and open-ended, transcripts), and independent numpy versions of the
metrics the figures use (written from docs/science.md/1b, not from hotmess.core.metrics)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from hotmess.core import schema
from hotmess.core.cube import provenance, save_cube

DELTA = 1e-12


def _stamp(ds: xr.Dataset, kind: str, experiment: str) -> xr.Dataset:
    ds.attrs.update(provenance(None, experiment=experiment))
    schema.stamp(ds.attrs, kind)
    return ds


def write(ds: xr.Dataset, results: Path, experiment: str) -> Path:
    return save_cube(ds, Path(results) / experiment / "cube.nc")


def swe_cube(passes: np.ndarray, actions: np.ndarray, *, output_tokens=None, reasoning_tokens=None,
               experiment: str = "swebench_probe", models=("m",)) -> xr.Dataset:
    """A SWE-bench cube. ``passes``: (model, question, draw, test) 0/1/NaN (NaN = padding);
    ``actions``: (model, question, draw)."""
    passes = np.asarray(passes, dtype=float)
    if passes.ndim == 3:
        passes = passes[None]
    nm, nq, nd, nt = passes.shape
    shape = (nm, 1, 1, nq, nd)

    def per_draw(x):
        return np.broadcast_to(np.asarray(x, dtype=float).reshape((nm if np.ndim(x) == 3 else 1, 1, 1, nq, nd)),
                               shape).copy()

    out_tok = per_draw(actions) * 10 + 5 if output_tokens is None else per_draw(output_tokens)
    rsn = np.full(shape, np.nan) if reasoning_tokens is None else per_draw(reasoning_tokens)
    ds = xr.Dataset(
        {
            "outcome": (("model", "size", "budget", "question", "draw", "test"), passes[:, None, None]),
            "actions": (("model", "size", "budget", "question", "draw"), per_draw(actions)),
            "output_tokens": (("model", "size", "budget", "question", "draw"), out_tok),
            "reasoning_tokens": (("model", "size", "budget", "question", "draw"), rsn),
            "finish_reason": (("model", "size", "budget", "question", "draw"), np.zeros(shape)),
        },
        coords={"model": list(models), "size": ["s"], "budget": ["none"],
                "question": [f"task{i}" for i in range(nq)], "draw": np.arange(nd), "test": np.arange(nt),
                "params": (("model", "size"), np.full((nm, 1), np.nan)),
                "budget_tokens": ("budget", [np.nan]),
                "subject": ("question", ["org/repo"] * nq),
                "n_tests": ("question", np.isfinite(passes[0]).any(1).sum(-1))},
    )
    return _stamp(ds, "tests", experiment)


def mc_cube(choices: np.ndarray, target: np.ndarray, output_tokens: np.ndarray, *, n_options: np.ndarray | None = None,
            subjects=None, experiment: str = "mwe_cpu", texts: bool = True, models=("m",)) -> xr.Dataset:
    """A multiple-choice cube of one-hot draws. ``choices``: (model, question, draw) option
    index, -1 = unparsed (uniform vector, format error); options beyond ``n_options[q]`` are
    NaN padding."""
    choices = np.asarray(choices)
    if choices.ndim == 2:
        choices = choices[None]
    nm, nq, nd = choices.shape
    C = 5
    n_options = np.full(nq, C) if n_options is None else np.asarray(n_options)
    out = np.full((nm, 1, 1, nq, nd, C), np.nan)
    fe = np.zeros((nm, 1, 1, nq, nd))
    answer = np.empty((nm, 1, 1, nq, nd), dtype=object)
    for m in range(nm):
        for q in range(nq):
            for d in range(nd):
                k = n_options[q]
                v = np.zeros(k)
                if choices[m, q, d] < 0:
                    v[:] = 1.0 / k
                    fe[m, 0, 0, q, d] = 1
                    answer[m, 0, 0, q, d] = ""
                else:
                    v[choices[m, q, d]] = 1.0
                    answer[m, 0, 0, q, d] = "ABCDE"[choices[m, q, d]]
                out[m, 0, 0, q, d, :k] = v
    tok = np.broadcast_to(np.asarray(output_tokens, dtype=float).reshape((-1, 1, 1, nq, nd)), fe.shape).copy()
    dims = ("model", "size", "budget", "question", "draw")
    data = {
        "outcome": (dims + ("option",), out),
        "output_tokens": (dims, tok),
        "reasoning_tokens": (dims, tok - 2),
        "format_error": (dims, fe),
        "finish_reason": (dims, np.where(fe == 1, 1.0, 0.0)),
        "answer": (dims, answer),
    }
    if texts:
        rt = np.empty(fe.shape, dtype=object)
        tx = np.empty(fe.shape, dtype=object)
        for idx in np.ndindex(fe.shape):
            rt[idx] = f"reasoning of model {idx[0]} question {idx[3]} draw {idx[4]}"
            tx[idx] = f"<answer>{answer[idx]}</answer>"
        data["reasoning_text"] = (dims, rt)
        data["text"] = (dims, tx)
    ds = xr.Dataset(data, coords={
        "model": list(models), "size": ["s"], "budget": ["16"], "question": [f"q{i}" for i in range(nq)],
        "draw": np.arange(nd), "option": list("ABCDE"), "params": (("model", "size"), np.full((nm, 1), np.nan)),
        "budget_tokens": ("budget", [16.0]), "target": ("question", np.asarray(target)),
        "subject": ("question", list(subjects) if subjects is not None else ["survival-instinct"] * nq)})
    return _stamp(ds, "probabilities", experiment)


def embedding_cube(emb: np.ndarray, output_tokens: np.ndarray, subjects, *, experiment: str = "mwe_open_cpu",
                   models=("m",)) -> xr.Dataset:
    """An open-ended cube: ``emb`` (model, question, draw, dim); ``output_tokens`` (model, question, draw)."""
    emb = np.asarray(emb, dtype=float)
    nm, nq, nd, dim = emb.shape
    dims = ("model", "size", "budget", "question", "draw")
    tok = np.asarray(output_tokens, dtype=float).reshape((nm, 1, 1, nq, nd))
    ds = xr.Dataset({
        "outcome": (dims + ("embedding",), emb[:, None, None]),
        "output_tokens": (dims, tok), "reasoning_tokens": (dims, tok - 1),
        "finish_reason": (dims, np.zeros(tok.shape)),
    }, coords={"model": list(models), "size": ["s"], "budget": ["16"], "question": [f"o{i}" for i in range(nq)],
               "draw": np.arange(nd), "embedding": np.arange(dim),
               "params": (("model", "size"), np.full((nm, 1), np.nan)), "budget_tokens": ("budget", [16.0]),
               "target": ("question", np.full(nq, -1)), "subject": ("question", list(subjects))})
    return _stamp(ds, "embedding", experiment)


# ----------------------------------------------------------------------------- independent metrics
def np_coverage(y: np.ndarray) -> tuple[float, float, float, float]:
    """(bias², variance, error, score) of one task from its (runs, tests) 0/1 matrix (NaN
    columns = padding, NaN rows = runs not run)."""
    y = np.asarray(y, dtype=float)
    y = y[:, ~np.isnan(y).all(0)]
    y = y[~np.isnan(y).any(1)]
    if y.size == 0:
        return (np.nan,) * 4
    ybar = y.mean(0)
    bias = np.mean((1 - ybar) ** 2)
    var = np.mean((y - ybar) ** 2)
    score = np.mean((y == 1).all(1))
    return bias, var, bias + var, score


def np_kl(p: np.ndarray, target: int) -> tuple[float, float, float]:
    """(bias, variance, error) of one question's (draws, options) probability vectors: PAPER 1a
    (smoothing, normalised geometric mean); NaN options are padding, NaN draws are not run."""
    p = np.asarray(p, dtype=float)
    p = p[:, ~np.isnan(p).all(0)]
    p = p[~np.isnan(p).any(1)]
    C = p.shape[1]
    f = (p + DELTA) / (1 + C * DELTA)
    g = np.exp(np.log(f).mean(0))
    g /= g.sum()
    bias = -np.log(g[target])
    var = np.mean(np.sum(g * (np.log(g) - np.log(f)), axis=1))
    var = max(var, 0.0)  # >= 0 by Jensen; rounding can leave -1e-16, clipped (docs/science.md, 1a)
    return bias, var, bias + var


def np_buckets(lengths: np.ndarray, k: int) -> list[np.ndarray]:
    """Question indices per equal-size bucket by mean length (stable sort, array_split)."""
    order = np.argsort(lengths, kind="stable")
    return np.array_split(order, k)


def np_paper_split(length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The paper's median split of one question's draws: below vs at/above the median."""
    med = np.median(length)
    return length < med, length >= med


def num(x):
    """JSON numbers (None = NaN) as a float array."""
    return np.array(x, dtype=float)


def np_bucket_line(passes_m, length_m, k):
    """SWE-bench bucket numbers of one line (tasks x runs x tests) by mean ``length_m``."""
    cov = np.array([np_coverage(passes_m[q]) for q in range(passes_m.shape[0])])
    qlen = np.array([np.nanmean(r) if np.isfinite(r).any() else np.nan for r in length_m])
    ok = np.isfinite(qlen) & np.isfinite(cov[:, 1])
    idx = np.flatnonzero(ok)
    out = {"x": [], "incoherence": [], "bias": [], "variance": [], "error": [], "score": []}
    for b in np_buckets(qlen[idx], min(k, idx.size)):
        members = idx[b]
        out["x"].append(qlen[members].mean())
        out["bias"].append(cov[members, 0].mean())
        out["variance"].append(cov[members, 1].mean())
        out["error"].append(cov[members, 2].mean())
        out["score"].append(cov[members, 3].mean())
        den = cov[members, 2].sum()
        out["incoherence"].append(cov[members, 1].sum() / den if den > 0 else np.nan)
    return out


def np_halves(passes_m, actions_m):
    """The paper's split; a task with an empty half leaves both halves."""
    out = {}
    keep = []
    masks = []
    for q in range(passes_m.shape[0]):
        s, lo = np_paper_split(actions_m[q])
        masks.append((s, lo))
        keep.append(s.any() and lo.any())
    for h, name in ((0, "short"), (1, "long")):
        if not any(keep):
            out[name] = {"score": np.nan, "incoherence": np.nan, "length": np.nan, "n_tasks": 0, "n_runs": 0}
            continue
        cov = np.array([np_coverage(np.where(masks[q][h][:, None], passes_m[q], np.nan))
                        for q in range(passes_m.shape[0]) if keep[q]])
        runs = np.concatenate([actions_m[q][masks[q][h]] for q in range(passes_m.shape[0]) if keep[q]])
        out[name] = {"score": cov[:, 3].mean(), "incoherence": cov[:, 1].sum() / cov[:, 2].sum(),
                     "length": runs.mean(), "n_tasks": len(cov), "n_runs": runs.size}
    return out


def np_mc_line(mc, m, subset, k):
    """MWE multiple-choice bucket numbers of model ``m`` on one subset by mean output tokens."""
    p = mc["outcome"].values[m, 0, 0]
    t = mc["target"].values
    tok = mc["output_tokens"].values[m, 0, 0]
    qs = [q for q, s in enumerate(mc["subject"].values) if subset in ("all", s)]
    kl = np.array([np_kl(p[q], t[q]) for q in qs])
    qlen = tok[qs].mean(1)
    out = {"x": [], "bias": [], "variance": [], "error": [], "incoherence": []}
    for b in np_buckets(qlen, min(k, len(qs))):
        out["x"].append(qlen[b].mean())
        out["bias"].append(kl[b, 0].mean())
        out["variance"].append(kl[b, 1].mean())
        out["error"].append(kl[b, 2].mean())
        out["incoherence"].append(kl[b, 1].sum() / kl[b, 2].sum())
    return out
