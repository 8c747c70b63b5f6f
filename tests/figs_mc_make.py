"""Constructed multiple-choice cubes with known answers for the figure tests, and an
independent numpy implementation of the KL and Brier decompositions (a second
implementation, not hotmess.core.metrics)."""

from __future__ import annotations

import numpy as np
import xarray as xr

DELTA = 1e-12


def cube(probs: np.ndarray, target, *, params=None, budgets=None, models=None, sizes=None,
         output_tokens=None, reasoning_text=None, context=None, difficulty=None, format_error=None,
         kind: str = "probabilities") -> xr.Dataset:
    """A schema-shaped cube from ``probs`` of shape (model, size, budget, question, draw, option)."""
    M, S, B, Q, D, C = probs.shape
    models = models or [f"m{i}" for i in range(M)]
    sizes = sizes or [f"s{i}" for i in range(S)]
    budgets = budgets or [str(b) for b in range(B)]
    params = np.asarray(params if params is not None else np.tile(np.arange(1, S + 1) * 1e9, (M, 1)), float)
    shape = (M, S, B, Q, D)
    if output_tokens is None:
        output_tokens = np.broadcast_to(np.arange(1, Q + 1)[:, None] * 10.0, shape)
    dims = ("model", "size", "budget", "question", "draw")
    ds = xr.Dataset(
        {"outcome": (dims + ("option",), probs),
         "output_tokens": (dims, np.broadcast_to(output_tokens, shape).astype(float)),
         "reasoning_tokens": (dims, np.broadcast_to(output_tokens, shape).astype(float)),
         "format_error": (dims, np.zeros(shape) if format_error is None else np.broadcast_to(format_error, shape).astype(float)),
         "reasoning_text": (dims, np.broadcast_to(np.asarray(reasoning_text if reasoning_text is not None else "", dtype=object), shape))},
        coords={"model": models, "size": sizes, "budget": budgets, "question": [f"q{i}" for i in range(Q)],
                "draw": np.arange(D), "option": list("ABCDEFGH"[:C]),
                "params": (("model", "size"), params),
                "target": ("question", np.broadcast_to(np.asarray(target), (Q,)).astype(int)),
                "context": ("draw", np.asarray(context if context is not None else np.zeros(D, int)))},
        attrs={"outcome_kind": kind, "schema_version": 2})
    if difficulty is not None:
        ds = ds.assign_coords(difficulty=("question", np.asarray(difficulty, dtype=object)))
    return ds


def onehot(choices: np.ndarray, n_options: int = 4) -> np.ndarray:
    """One-hot vectors for integer choices (any shape) -> shape + (n_options,)."""
    return (np.asarray(choices)[..., None] == np.arange(n_options)).astype(float)


def np_brier(p: np.ndarray, t: int):
    """Brier bias, variance, error of draws p (draw, option), target t (valid draws only)."""
    p = p[np.isfinite(p).all(-1)]
    fh = (p + DELTA) / (1 + p.shape[-1] * DELTA)
    y = np.eye(p.shape[-1])[t]
    fbar = fh.mean(0)
    return float(((y - fbar) ** 2).sum()), float(((fh - fbar) ** 2).sum(-1).mean()), float(((y - fh) ** 2).sum(-1).mean())


def np_kl(p: np.ndarray, t: int):
    """KL bias, variance, error (normalised geometric mean, δ-smoothing)."""
    p = p[np.isfinite(p).all(-1)]
    fh = (p + DELTA) / (1 + p.shape[-1] * DELTA)
    m = np.log(fh).mean(0)
    fbar = np.exp(m) / np.exp(m).sum()
    bias = -np.log(fbar[t])
    var = float((fbar * (np.log(fbar) - np.log(fh))).sum(-1).mean())
    return float(bias), var, float(bias + var)
