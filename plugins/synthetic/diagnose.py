"""Diagnosis of trained synthetic-optimizer models (``docs/science.md#the-synthetic-optimizer``).

Why does a model's rollout leave the teacher's trajectory? Four families of numbers, each
computed on held-out data (trajectories the model was not trained on) or on fresh rollouts:

1. :func:`token_accuracy`: teacher-forced next-token accuracy of the u tokens (constrained
   greedy choice at every position given the true prefix), per field (coordinate of u) and per
   position inside a float (sign, exponent digit, mantissa digits m0..m_p).
2. :func:`step_error`: the model's own decoded update u (free-running constrained greedy
   decoding, as in a rollout) against the teacher's update at the same x: relative error
   ``||u - u*|| / ||u*||``, cosine of the angle, norm ratio, and whether every token of u is
   exact; also binned by the distance ``||x - b||`` to the minimiser (where the model fails).
3. :func:`rollout_distance`: model and teacher rolled out from the same starts: the distance
   ``||x_t - x*_t||`` between them and the distance of each to the minimiser, per step
   (median and quartiles over starts), and the step at which each start first leaves the
   teacher by more than ``k`` teacher steps.
4. :func:`quantisation_error`: what re-encoding the state costs (the model sees the rounded
   x, the float64 iterate is kept, so rounding does not accumulate).

:func:`diagnose` bundles 1-3 into one JSON-ready dict; ``scripts/synthetic_study.py`` calls it
at training checkpoints.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hotmess.plugins.synthetic.encoding import allowed_mask, decode, encode, tokens_per_float
from hotmess.plugins.synthetic.model import Transformer


def position_names(precision: int) -> list[str]:
    """Names of the positions inside one float: ``sign``, ``exp``, ``m0`` .. ``m<precision>``."""
    return ["sign", "exp"] + [f"m{k}" for k in range(precision + 1)]


@torch.no_grad()
def token_accuracy(model: Transformer, tokens: np.ndarray | torch.Tensor, dim: int, precision: int,
                   *, batch: int = 2048) -> dict[str, Any]:
    """Teacher-forced accuracy of the u tokens.

    At every u position the prediction is the argmax of the logits over the tokens allowed at
    that position (sign or digit), given the true x and the true u tokens before it.

    Parameters
    ----------
    model : Transformer
    tokens : array, shape (n, 2 * dim * tokens_per_float(precision))
        Held-out (x, u) pairs, x tokens then u tokens.
    dim : int
        d, coordinates per vector.
    precision : int

    Returns
    -------
    dict
        ``per_token`` : list, shape (dim, tokens_per_float) - accuracy of each u token
        (row = field / coordinate of u, column = position inside the float);
        ``per_field`` : list, shape (dim,) - mean over the positions of a field;
        ``per_position`` : dict position name -> mean over fields;
        ``float_exact`` : list, shape (dim,) - fraction of pairs with every token of that field
        right; ``pair_exact`` : fraction with all u tokens right; ``n`` : pairs used.
    """
    n_tok = tokens_per_float(precision)
    n_x = dim * n_tok
    t = torch.as_tensor(np.asarray(tokens)).long()
    device = next(model.parameters()).device
    mask = torch.as_tensor(allowed_mask(dim, precision), device=device)
    neg = torch.where(mask, 0.0, float("-inf"))
    was = model.training
    model.eval()
    hits = []
    for lo in range(0, t.shape[0], batch):
        tb = t[lo:lo + batch].to(device)
        logits = model(tb[:, :-1])[:, n_x - 1:].float() + neg
        hits.append((logits.argmax(-1) == tb[:, n_x:]).cpu())
    model.train(was)
    h = torch.cat(hits).numpy().reshape(-1, dim, n_tok)
    per_token = h.mean(0)
    names = position_names(precision)
    return {"per_token": per_token.tolist(), "per_field": per_token.mean(1).tolist(),
            "per_position": {names[k]: float(per_token[:, k].mean()) for k in range(n_tok)},
            "float_exact": h.all(2).mean(0).tolist(), "pair_exact": float(h.all((1, 2)).mean()),
            "n": int(h.shape[0])}


def step_error(u_model: np.ndarray, u_teacher: np.ndarray, x: np.ndarray | None = None,
               b: np.ndarray | None = None, *, bins: np.ndarray | None = None) -> dict[str, Any]:
    """Error of decoded updates against the teacher's.

    Parameters
    ----------
    u_model, u_teacher : numpy.ndarray, shape (n, d)
        The model's decoded update and the teacher's at the same points (teacher norms > 0).
    x : numpy.ndarray, shape (n, d), optional
        The points, to bin the error by their distance to ``b``.
    b : numpy.ndarray, shape (d,), optional
        The minimiser.
    bins : numpy.ndarray, optional
        Bin edges of ``||x - b||`` (default: quartiles of the distances).

    Returns
    -------
    dict
        ``rel_error`` (mean and median of ``||u - u*|| / ||u*||``), ``cosine`` (mean and
        median of the cosine between u and u*), ``norm_ratio`` (median ``||u|| / ||u*||``),
        ``wrong_direction`` (fraction with cosine < 0); with ``x`` and ``b`` also ``by_distance``:
        per bin its edges, count, median relative error and median cosine.
    """
    um, ut = np.asarray(u_model, float), np.asarray(u_teacher, float)
    nt = np.linalg.norm(ut, axis=-1)
    nm = np.linalg.norm(um, axis=-1)
    rel = np.linalg.norm(um - ut, axis=-1) / nt
    cos = np.einsum("ni,ni->n", um, ut) / np.where(nm > 0, nm * nt, np.inf)
    out: dict[str, Any] = {
        "rel_error": {"mean": float(rel.mean()), "median": float(np.median(rel))},
        "cosine": {"mean": float(cos.mean()), "median": float(np.median(cos))},
        "norm_ratio": {"median": float(np.median(nm / nt))},
        "wrong_direction": float((cos < 0).mean()),
        "n": int(len(rel)),
    }
    if x is not None and b is not None:
        dist = np.linalg.norm(np.asarray(x, float) - np.asarray(b, float), axis=-1)
        edges = np.quantile(dist, [0, 0.25, 0.5, 0.75, 1.0]) if bins is None else np.asarray(bins, float)
        rows = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            sel = (dist >= lo) & ((dist < hi) | (hi == edges[-1]) & (dist <= hi))
            rows.append({"dist_lo": float(lo), "dist_hi": float(hi), "n": int(sel.sum()),
                         "rel_error_median": float(np.median(rel[sel])) if sel.any() else None,
                         "cosine_median": float(np.median(cos[sel])) if sel.any() else None})
        out["by_distance"] = rows
    return out


def first_exit(dist_to_teacher: np.ndarray, threshold: float) -> np.ndarray:
    """Per start, the first step whose distance to the teacher exceeds ``threshold``.

    Parameters
    ----------
    dist_to_teacher : numpy.ndarray, shape (steps, n)
    threshold : float

    Returns
    -------
    numpy.ndarray of float, shape (n,)
        The step index (row), or NaN where the start never leaves.
    """
    over = np.asarray(dist_to_teacher) > threshold
    idx = over.argmax(0).astype(float)
    idx[~over.any(0)] = np.nan
    return idx


def rollout_distance(xs_model: np.ndarray, xs_teacher: np.ndarray, b: np.ndarray, steps: np.ndarray,
                     step_norm: float, *, exit_teacher_steps: float = 10.0) -> dict[str, Any]:
    """Distances of a rollout to the teacher's and to the minimiser, per recorded step.

    Parameters
    ----------
    xs_model, xs_teacher : numpy.ndarray, shape (n_steps, n, d)
        Iterates of the model and of the teacher from the same starts.
    b : numpy.ndarray, shape (d,)
    steps : numpy.ndarray of int, shape (n_steps,)
        The rollout step of each row.
    step_norm : float
        The teacher's step length (the unit of "left the teacher").
    exit_teacher_steps : float
        A start has left the teacher once ``||x_t - x*_t|| > exit_teacher_steps * step_norm``.

    Returns
    -------
    dict
        ``step``; ``to_teacher`` and ``model_to_min`` / ``teacher_to_min``, each with
        ``q25``, ``median``, ``q75`` over starts per step (Euclidean); ``exit_step``: median
        step of leaving the teacher (NaN entries = never) and ``stayed``: fraction of starts
        that never left.
    """
    steps = np.asarray(steps)
    dt = np.linalg.norm(np.asarray(xs_model) - np.asarray(xs_teacher), axis=-1)
    dm = np.linalg.norm(np.asarray(xs_model) - b, axis=-1)
    dtm = np.linalg.norm(np.asarray(xs_teacher) - b, axis=-1)

    def q(a):
        return {k: np.quantile(a, p, axis=1).tolist() for k, p in (("q25", 0.25), ("median", 0.5), ("q75", 0.75))}

    ex = first_exit(dt, exit_teacher_steps * step_norm)
    ex_steps = np.where(np.isfinite(ex), steps[np.nan_to_num(ex).astype(int)], np.nan)
    return {"step": steps.tolist(), "to_teacher": q(dt), "model_to_min": q(dm), "teacher_to_min": q(dtm),
            "exit_threshold": exit_teacher_steps * step_norm,
            "exit_step_median": float(np.nanmedian(ex_steps)) if np.isfinite(ex_steps).any() else None,
            "stayed": float(np.isnan(ex_steps).mean())}


def quantisation_error(x: np.ndarray, precision: int) -> dict[str, float]:
    """What the model's view of a state loses: ``max |x - decode(encode(x))|`` per coordinate,
    and the largest Euclidean rounding of a point (shape of ``x``: (n, d))."""
    tok, _ = encode(x, precision, clamp=True)
    r = np.asarray(x, float) - decode(tok, precision)
    return {"max_abs_coordinate": float(np.abs(r).max()), "max_point_norm": float(np.linalg.norm(r, axis=-1).max())}


def diagnose(model: Transformer, problem, heldout_x: np.ndarray, heldout_u: np.ndarray, starts: np.ndarray, *,
             precision: int, step_norm: float, rollout_steps: int, record_every: int = 4) -> dict[str, Any]:
    """All diagnostics of one model on one problem (JSON-ready).

    Parameters
    ----------
    model : Transformer
    problem : hotmess.plugins.synthetic.problem.Quadratic
    heldout_x, heldout_u : numpy.ndarray, shape (n, d)
        Held-out teacher pairs (x_t, u_t).
    starts : numpy.ndarray, shape (m, d)
        Rollout start points.
    precision, step_norm, rollout_steps, record_every
        As in the experiment's settings.

    Returns
    -------
    dict with ``token_accuracy``, ``step_error``, ``rollout`` and ``quantisation``.
    """
    from hotmess.plugins.synthetic.problem import teacher_trajectories
    from hotmess.plugins.synthetic.rollout import predict_updates, rollout
    from hotmess.plugins.synthetic.train import encode_pairs

    d = problem.dim
    acc = token_accuracy(model, encode_pairs(heldout_x, heldout_u, precision), d, precision)
    u, _ = predict_updates(model, heldout_x, precision)
    err = step_error(u, heldout_u, heldout_x, problem.b,
                     bins=np.array([0.0, 2 * step_norm, 10 * step_norm, 50 * step_norm, np.inf]))
    xs, rec, clamped = rollout(model, starts, rollout_steps, precision, record_every=record_every)
    txs, _ = teacher_trajectories(problem, starts, rollout_steps, step_norm)
    roll = rollout_distance(xs, txs[rec], problem.b, rec, step_norm)
    roll["clamped_steps_total"] = int(clamped.sum())
    fx = problem.value(xs)
    roll["f_median"] = np.median(fx, axis=1).tolist()
    roll["teacher_f_median"] = np.median(problem.value(txs[rec]), axis=1).tolist()
    return {"token_accuracy": acc, "step_error": err, "rollout": roll,
            "quantisation": quantisation_error(np.concatenate([heldout_x, xs.reshape(-1, d)]), precision)}
