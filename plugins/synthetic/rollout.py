"""Markovian rollouts of a trained model (the paper's section 3, docs/science.md, "Evaluation").

At each step the model sees the tokens of the current x only, generates the tokens of u
one at a time with constrained decoding (a sign at sign positions, a digit elsewhere; greedy
by default, sampling at ``temperature > 0``), u is decoded and added in float64, and the new
x is re-encoded. Iterates that leave the encoding's range are clamped to it for the model's
input (counted in ``clamped``) while the float64 iterate itself is kept.
"""

from __future__ import annotations

import numpy as np
import torch

from hotmess.plugins.synthetic.encoding import allowed_mask, decode, encode, tokens_per_float
from hotmess.plugins.synthetic.model import KVCache, Transformer


@torch.no_grad()
def predict_updates(
    model: Transformer,
    x: np.ndarray,
    precision: int,
    *,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's update u for each point.

    Parameters
    ----------
    x : numpy.ndarray, shape (n, d)
    temperature : float
        0 = greedy; otherwise sample from softmax(logits / temperature) over the allowed tokens.
    generator : torch.Generator, optional
        For sampling (on the model's device).

    Returns
    -------
    u : numpy.ndarray, shape (n, d)
    clamped : numpy.ndarray of bool, shape (n,)
        Whether any coordinate of x was clamped to the encoding's range.
    """
    device = next(model.parameters()).device
    n, d = x.shape
    tx, clamped = encode(x, precision, clamp=True)
    n_u = d * tokens_per_float(precision)
    mask = torch.as_tensor(allowed_mask(d, precision), device=device)
    neg = torch.where(mask, 0.0, float("-inf"))
    cache = KVCache(model, n, device)
    logits = model(torch.as_tensor(tx.reshape(n, -1), device=device).long(), cache)[:, -1]
    out = torch.empty(n, n_u, dtype=torch.long, device=device)
    for j in range(n_u):
        lg = logits.float() + neg[j]
        if temperature > 0:
            tok = torch.multinomial(torch.softmax(lg / temperature, -1), 1, generator=generator)[:, 0]
        else:
            tok = lg.argmax(-1)
        out[:, j] = tok
        if j + 1 < n_u:
            logits = model(tok[:, None], cache)[:, -1]
    u = decode(out.cpu().numpy().reshape(n, d, -1), precision)
    return u, clamped.any(-1)


def rollout(
    model: Transformer,
    x0: np.ndarray,
    steps: int,
    precision: int,
    *,
    record_every: int = 1,
    temperature: float = 0.0,
    seed: int = 0,
    batch_size: int = 4096,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Roll the model out from each start point, batched over start points.

    Parameters
    ----------
    x0 : numpy.ndarray, shape (n, d)
    steps : int
        Markovian steps.
    record_every : int
        Keep x_t for t = 0, record_every, 2 * record_every, ... (and always the last step).
    temperature : float
    seed : int
        Seed of the sampling generator (unused when greedy).
    batch_size : int
        Start points per batch.

    Returns
    -------
    xs : numpy.ndarray, shape (n_recorded, n, d)
    recorded_steps : numpy.ndarray of int, shape (n_recorded,)
    clamped : numpy.ndarray of int, shape (n,)
        Steps at which the start point's iterate was outside the encoding's range.
    """
    rec = recorded_steps(steps, record_every)
    n, d = x0.shape
    device = next(model.parameters()).device
    was = model.training
    model.eval()
    xs = np.empty((len(rec), n, d))
    clamped = np.zeros(n, dtype=np.int64)
    for lo in range(0, n, batch_size):
        hi = min(n, lo + batch_size)
        g = torch.Generator(device=device).manual_seed(int(seed) + lo) if temperature > 0 else None
        x = np.array(x0[lo:hi], dtype=np.float64)
        k = 0
        for t in range(steps + 1):
            if k < len(rec) and rec[k] == t:
                xs[k, lo:hi] = x
                k += 1
            if t == steps:
                break
            u, c = predict_updates(model, x, precision, temperature=temperature, generator=g)
            clamped[lo:hi] += c
            x = x + u
    model.train(was)
    return xs, rec, clamped


def recorded_steps(steps: int, record_every: int) -> np.ndarray:
    """Steps kept: 0, record_every, ... and ``steps`` itself."""
    if record_every < 1:
        raise ValueError(f"record_every must be >= 1, not {record_every}")
    rec = np.arange(0, steps + 1, record_every)
    if rec[-1] != steps:
        rec = np.append(rec, steps)
    return rec
