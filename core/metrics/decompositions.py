"""Bias/variance decompositions of multiple-choice outcomes: KL, Brier, 0/1, accuracy.

Pure functions of :class:`xarray.DataArray` inputs, vectorised over every dimension they do
not reduce (``option`` and ``draw`` by default), numpy or dask backed (a dask-backed cube,
e.g. ``xr.open_dataset(path, chunks={"question": 500})``, is processed chunk by chunk; the
draw and option dims are gathered into single chunks). Missing data and padding follow
``docs/science.md#missing-data-and-padding``; the formulas are
``docs/science.md#kl-decomposition``, ``#brier-decomposition``, ``#01-decomposition`` and
the tie rule ``docs/science.md#ties``. The numpy core is :mod:`._kernels`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from hotmess.core.metrics import _kernels as K
from hotmess.core.metrics.validation import (
    DEFAULT_DELTA,
    TIE_RULE,
    BadInput,
    as_float,
    explain_bad_probs,
    require,
    target_vector,
)

__all__ = [
    "smooth",
    "validate_probabilities",
    "kl_decomposition",
    "brier_decomposition",
    "zero_one_decomposition",
    "accuracy",
]


def smooth(p: xr.DataArray, delta: float = DEFAULT_DELTA, dim: str = "option") -> xr.DataArray:
    """Smooth probability vectors away from zero: ``f̂ = (f + δ) / (1 + C δ)``.

    Parameters
    ----------
    p : xarray.DataArray
        Probability vectors along ``dim`` (any other dims). NaN entries (padding, draws not
        run) stay NaN and are not counted in ``C``.
    delta : float, default 1e-12
        The smoothing constant δ ≥ 0 (dimensionless).
    dim : str, default "option"
        The outcome dimension.

    Returns
    -------
    xarray.DataArray
        Same dims and shape as ``p``; each vector still sums to 1 and its entries are ≥
        δ / (1 + Cδ), with ``C`` the number of non-NaN entries of that vector.

    Raises
    ------
    ValueError
        If ``delta`` < 0 or ``dim`` is not a dimension of ``p``.

    Notes
    -----
    ``docs/science.md#kl-decomposition`` (smoothing, before any metric).
    """
    require(p, "p", dim)
    if not delta >= 0:
        raise ValueError(f"delta must be >= 0, got {delta}")
    n = p.notnull().sum(dim)
    return (p + delta) / (1 + n * delta)


def run_kernel(
    probs: xr.DataArray, target: Any, outputs: str, dim: str, draw_dim: str, delta: float,
    check: bool = True,
) -> dict[str, xr.DataArray]:
    """Check the inputs and apply :func:`._kernels.decompose`; one DataArray per output."""
    require(probs, "probs", dim, draw_dim)
    if not delta >= 0:
        raise ValueError(f"delta must be >= 0, got {delta}")
    probs = as_float(probs)
    y = target_vector(target, probs, dim)
    names = K.OUTPUTS[outputs]
    kw: dict[str, Any] = dict(
        input_core_dims=[[draw_dim, dim], [dim]],
        output_core_dims=[[] for _ in names],
        kwargs={"outputs": outputs, "delta": float(delta), "check": check},
    )
    lazy = probs.chunks is not None
    if lazy:
        probs = probs.chunk({draw_dim: -1, dim: -1})
        kw.update(dask="parallelized", output_dtypes=[float] * len(names))
    try:
        res = xr.apply_ufunc(K.decompose, probs, y, **kw)
        if lazy:
            import dask

            res = dask.compute(*res)
    except BadInput:
        explain_bad_probs(probs, target, dim, draw_dim)
    out = dict(zip(names, res, strict=True))
    out["n_draws"] = out["n_draws"].astype(np.int64)
    return out


def validate_probabilities(
    probs: xr.DataArray, target: Any = None, *, dim: str = "option", draw_dim: str = "draw"
) -> None:
    """Check a cube once (then call the decompositions with ``check=False``).

    Parameters
    ----------
    probs : xarray.DataArray
        Probability vectors, dims including ``dim`` and ``draw_dim`` (numpy or dask).
    target : xarray.DataArray or int, optional
        Checked too when given (an integer index in range or a probability vector, not on a
        padded option).
    dim, draw_dim : str

    Raises
    ------
    ValueError
        Naming the first cell whose draw is not a probability vector (entries in [0, 1]
        and sum 1 within 1e-6), ±inf, or a bad target (``docs/science.md#missing-data-and-padding``).
    """
    require(probs, "probs", dim, draw_dim)
    probs = as_float(probs)
    if probs.chunks is not None:
        probs = probs.chunk({draw_dim: -1, dim: -1})
    t = 0 if target is None else target
    y = target_vector(t, probs, dim)  # checks the target itself (index in range, ...)
    try:
        done = xr.apply_ufunc(
            _check_blocks, probs, y, input_core_dims=[[draw_dim, dim], [dim]],
            output_core_dims=[[]], dask="parallelized", output_dtypes=[bool],
            kwargs={"with_target": target is not None},
        )
        bool(done.all())  # computes a dask-backed cube
    except BadInput:
        explain_bad_probs(probs, t, dim, draw_dim)


def _check_blocks(x: np.ndarray, y: np.ndarray, with_target: bool) -> np.ndarray:
    """Every check of the kernel, block by block (raises BadInput); the target may not put
    mass on a padded option."""
    lead, C = x.shape[:-2], x.shape[-1]
    xf = K.flat_cells(x)
    yf = np.broadcast_to(y, lead + (C,)).reshape(-1, C)
    for sl in K.blocks(xf.shape[0], x.shape[-2] * C):
        b = K.Block(xf[sl])
        if with_target and b.present is not None:
            ran = b.valid.any(-1)
            if ((yf[sl] > 0) & ~b.present).any(-1)[ran].any():
                raise BadInput("target on padding")
    return np.ones(lead, dtype=bool)


def kl_decomposition(
    probs: xr.DataArray,
    target: xr.DataArray | int,
    *,
    dim: str = "option",
    draw_dim: str = "draw",
    delta: float = DEFAULT_DELTA,
    check: bool = True,
) -> xr.Dataset:
    """KL bias/variance decomposition of the cross-entropy (the paper's main metric).

    ``E_ε CE(y, f̂_ε) = H(y) + KL(y ‖ f̄) + E_ε KL(f̄ ‖ f̂_ε)``, with ``f̄`` the *normalised
    geometric mean* of the draws: ``f̄[c] ∝ exp(E_ε log f̂_ε[c])`` (vectors smoothed first,
    see :func:`smooth`).

    Parameters
    ----------
    probs : xarray.DataArray
        Probability vectors, dims ``(..., draw_dim, ..., dim)`` in any order, e.g.
        ``(model, size, budget, question, draw, option)``; numpy or dask backed. NaN = not
        run / padding. Each valid draw must sum to 1 (within 1e-6) with entries in [0, 1].
    target : xarray.DataArray or int
        Either the integer index (0-based position along ``dim``) of the correct option,
        dims e.g. ``(question,)`` (one-hot ``y``), or a probability vector with dim ``dim``
        (general ``y``). Aligned to ``probs`` by coordinate labels; every question of
        ``probs`` needs a target.
    dim, draw_dim : str
        The outcome and draw dimensions (both reduced).
    delta : float, default 1e-12
        Smoothing constant.
    check : bool, default True
        Check that every valid draw is a probability vector. ``False`` trusts the cube
        (check it once with :func:`validate_probabilities` before several decompositions);
        missing data (NaN) and padding are still handled.

    Returns
    -------
    xarray.Dataset
        Dims of ``probs`` minus ``dim`` and ``draw_dim``. Variables (nats, except n_draws):

        - ``bias``: KL(y ‖ f̄); for one-hot y this is ``-log f̄[correct]``.
        - ``variance``: E_ε KL(f̄ ‖ f̂_ε), mean over valid draws (= ``-log Σ_c exp E log f̂[c]``).
        - ``error``: bias + variance.
        - ``cross_entropy``: E_ε CE(y, f̂_ε); equals ``noise + error`` (the identity).
        - ``noise``: the entropy H(y) of the target (0 for one-hot y, the paper's case).
        - ``n_draws``: number of valid draws (int).

        All are NaN where no draw is valid.

    Raises
    ------
    ValueError
        Missing dims, a draw that is not a probability vector, ±inf values, a target that is
        missing, not an integer in range, or on a padded option (the message names the cell).

    Notes
    -----
    ``docs/science.md#kl-decomposition``. Plug-in estimates (no small-sample correction).
    """
    out = run_kernel(probs, target, "kl", dim, draw_dim, delta, check)
    ds = xr.Dataset(out)
    ds.attrs.update(family="KL", units="nats", delta=delta, mean="normalised geometric")
    return ds


def brier_decomposition(
    probs: xr.DataArray,
    target: xr.DataArray | int,
    *,
    dim: str = "option",
    draw_dim: str = "draw",
    delta: float = DEFAULT_DELTA,
    check: bool = True,
) -> xr.Dataset:
    """Brier (squared-error) bias/variance decomposition.

    ``E‖y − f̂_ε‖² = ‖y − f̃‖² + E‖f̃ − f̂_ε‖²`` with ``f̃ = E_ε f̂_ε`` the arithmetic mean of
    the (smoothed) draws.

    Parameters
    ----------
    probs, target, dim, draw_dim, delta, check
        As in :func:`kl_decomposition`.

    Returns
    -------
    xarray.Dataset
        Dims of ``probs`` minus ``dim`` and ``draw_dim``; variables (squared probability,
        dimensionless, in [0, 2]): ``bias`` = ‖y − f̃‖², ``variance`` = E‖f̃ − f̂_ε‖²,
        ``error`` = E‖y − f̂_ε‖² (from ``E‖f̂‖²``, so ``error == bias + variance`` is a
        check, not a definition), ``n_draws``. NaN where no draw is valid.

    Raises
    ------
    ValueError
        As in :func:`kl_decomposition`.

    Notes
    -----
    ``docs/science.md#brier-decomposition``.
    """
    ds = xr.Dataset(run_kernel(probs, target, "brier", dim, draw_dim, delta, check))
    ds.attrs.update(family="Brier", delta=delta, mean="arithmetic")
    return ds


def zero_one_decomposition(
    probs: xr.DataArray,
    target: xr.DataArray | int,
    *,
    dim: str = "option",
    draw_dim: str = "draw",
    check: bool = True,
) -> xr.Dataset:
    """0/1-loss bias/variance decomposition of Domingos (2000), ties split fractionally.

    Each draw predicts ``ĉ_ε = argmax f_ε``; the main prediction is ``c̄ = argmax E_ε f_ε``
    (the arithmetic mean vector). With ``c*`` the correct option: loss = E 1{c* ≠ ĉ_ε},
    bias = 1{c* ≠ c̄}, variance = E 1{c̄ ≠ ĉ_ε}.

    Ties (rule ``"fractional"``, ``docs/science.md#ties``): entries within 1e-9 of the
    maximum tie, and every quantity is its expected value under a uniform random tie-break,
    independent for each draw and for ``c̄``. A format error (the uniform vector) is a C-way
    tie: it is correct with probability 1/C and favours no option; a 2-2-1 split of five
    draws makes ``c̄`` each of the two leaders with probability 1/2.

    Parameters
    ----------
    probs, target, dim, draw_dim, check
        As in :func:`kl_decomposition` (no smoothing: it does not change an argmax). For a
        probability target, ``c*`` = its argmax (ties split too).

    Returns
    -------
    xarray.Dataset
        Dims of ``probs`` minus ``dim`` and ``draw_dim``; variables (fractions in [0, 1]
        except where noted):

        - ``error`` (alias ``loss``): E 1{c* ≠ ĉ_ε}.
        - ``bias``: P(c* ≠ c̄) (0 or 1 without a tie for c̄).
        - ``variance``: P(c̄ ≠ ĉ_ε).
        - ``sign``: E[+1 if c̄ = c* else −1] (±1 without a tie for c̄), in [−1, 1].
        - ``net_variance``: ``error − bias``, Domingos' net variance E_c̄[c(c̄) · V(c̄)] with
          ``c = +1`` for a correct c̄ and ``−P(ĉ = c* | ĉ ≠ c̄)`` otherwise, so that
          ``error == bias + net_variance`` exactly (the identity).
        - ``net_coefficient``: net_variance / variance (``sign`` where the variance is 0).
        - ``main_prediction``: c̄ as a float index; −1 where options tie for c̄; NaN where
          no draw is valid. ``main_ties``: the number of options tied for c̄.
        - ``n_draws``.

    Raises
    ------
    ValueError
        As in :func:`kl_decomposition`.

    Notes
    -----
    ``docs/science.md#01-decomposition``. The paper's "loss = bias + sign · variance" holds
    exactly only for two options without ties (or when all off-main predictions are
    correct). Only absolute bias and variance are plotted; there is no 0/1 incoherence.
    """
    ds = xr.Dataset(run_kernel(probs, target, "zero_one", dim, draw_dim, 0.0, check))
    ds.attrs.update(family="0/1", ties=TIE_RULE)
    return ds


def accuracy(
    probs: xr.DataArray,
    target: xr.DataArray | int,
    *,
    dim: str = "option",
    draw_dim: str = "draw",
    ties: str = TIE_RULE,
    check: bool = True,
) -> xr.DataArray:
    """Per-cell accuracy: the mean over valid draws of ``P(argmax f_ε = c*)``.

    Parameters
    ----------
    probs, target, dim, draw_dim, check
        As in :func:`zero_one_decomposition`.
    ties : {"fractional"}
        The tie rule (``docs/science.md#ties``): a k-way tie for the maximum that includes
        c* scores 1/k, the expected accuracy under a uniform random tie-break; a format
        error (uniform vector) scores 1/C, so an all-format-error question has accuracy 1/C.
        Equals 1 − the 0/1 loss. (The former ``"lowest"`` rule, which gave every tie to
        option A, is refused.)

    Returns
    -------
    xarray.DataArray
        Fraction in [0, 1], dims of ``probs`` minus ``dim`` and ``draw_dim``; NaN where no
        draw is valid; ``attrs["ties"]`` names the rule. Average over ``question`` yourself
        for a benchmark accuracy.

    Raises
    ------
    ValueError
        A ``ties`` other than "fractional", or as in :func:`kl_decomposition`.
    """
    if ties != TIE_RULE:
        raise ValueError(
            f"ties must be {TIE_RULE!r} (a tie may not favour a label; docs/science.md#ties), got {ties!r}"
        )
    acc = run_kernel(probs, target, "accuracy", dim, draw_dim, 0.0, check)["accuracy"]
    acc.attrs["ties"] = TIE_RULE
    return acc.rename("accuracy")
