"""Incoherence and the grouping of questions: length buckets, difficulty groups, median split.

Incoherence is a ratio of sums over a set of questions (``docs/science.md#incoherence``);
the groupings decide which questions (or which draws of each question) form a set:
equal-size reasoning-length buckets (``docs/science.md#length-buckets``), difficulty groups by
a reference model's length (``docs/science.md#difficulty-groups``) and the per-question median
split of natural overthinking (``docs/science.md#median-split``).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import xarray as xr

from hotmess.core.metrics.decompositions import accuracy, kl_decomposition
from hotmess.core.metrics.validation import (
    DEFAULT_DELTA,
    Dims,
    as_dims,
    as_float,
    mean_over,
    quiet,
    require,
)

__all__ = [
    "incoherence",
    "length_buckets",
    "incoherence_by_group",
    "incoherence_by_bucket",
    "difficulty_groups",
    "DIFFICULTY_LABELS",
    "MedianSplit",
    "median_split",
    "overthinking",
]

#: The paper's five difficulty groups, easiest first (``docs/science.md#difficulty-groups``).
DIFFICULTY_LABELS = ("Easy", "Easy-Medium", "Medium", "Medium-Hard", "Hard")


def incoherence(
    variance: xr.DataArray,
    error: xr.DataArray,
    dim: Dims = "question",
    *,
    weights: xr.DataArray | None = None,
) -> xr.DataArray:
    """Incoherence of a set of questions: ``Σ_i variance_i / Σ_i error_i``.

    A ratio of sums, never a mean of per-question ratios. A question counts only where both
    its variance and its error are finite (NaN-skipping is the same for numerator and
    denominator).

    Parameters
    ----------
    variance, error : xarray.DataArray
        Per-question variance and error of one family (KL, Brier, coverage error, ...),
        same units; broadcastable, dims including ``dim``.
    dim : str or sequence of str, default "question"
        Dims summed over.
    weights : xarray.DataArray, optional
        Non-negative weight per question (dims including ``dim``, e.g. ``(replicate,
        question)`` bootstrap counts): ``Σ w_i variance_i / Σ w_i error_i``, contracted
        without broadcasting the data against the weights' other dims.

    Returns
    -------
    xarray.DataArray
        Dimensionless, in [0, 1] when variance ≤ error; the broadcast dims minus ``dim``
        (plus the weights' other dims). NaN where no question counts or the summed error
        is 0.

    Raises
    ------
    TypeError, ValueError
        Non-DataArray inputs, or ``dim`` missing.

    Notes
    -----
    ``docs/science.md#incoherence``: INCOHERENCE(Q) = Σ_i VARIANCE(q_i) / Σ_i ERROR(q_i).
    """
    dims = as_dims(dim)
    require(variance, "variance")
    require(error, "error")
    if not _aligned(variance, error):
        variance, error = xr.broadcast(variance, error)
        error = error.transpose(*variance.dims)
    missing = [d for d in dims if d not in variance.dims]
    if missing:
        raise ValueError(f"variance/error lack dims {missing}")
    if weights is not None:
        both = variance.notnull() & error.notnull()
        num = xr.dot(weights, variance.where(both, 0.0), dim=dims)
        den = xr.dot(weights, error.where(both, 0.0), dim=dims)
        n = xr.dot(weights, both.astype(float), dim=dims)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (num / den.where((den != 0) & (n > 0))).rename("incoherence")
    if variance.chunks is not None or error.chunks is not None:
        both = variance.notnull() & error.notnull()
        num = variance.where(both).sum(dims, min_count=1)
        den = error.where(both).sum(dims, min_count=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (num / den.where(den != 0)).rename("incoherence")
    v, e = np.asarray(variance.values, dtype=float), np.asarray(error.values, dtype=float)
    axes = tuple(variance.dims.index(d) for d in dims)
    num, den = v.sum(axes), e.sum(axes)
    counted = np.ones(num.shape, dtype=bool)
    if np.isnan(num).any() or np.isnan(den).any():  # a NaN somewhere: skip it in both sums
        both = ~(np.isnan(v) | np.isnan(e))
        num = np.where(both, v, 0.0).sum(axes)
        den = np.where(both, e, 0.0).sum(axes)
        counted = both.any(axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(counted & (den != 0), num / den, np.nan)
    keep = [d for d in variance.dims if d not in dims]
    coords = {k: c for k, c in variance.coords.items() if not set(c.dims) & set(dims)}
    return xr.DataArray(out, dims=keep, coords=coords, name="incoherence")


def _question_length(length: xr.DataArray, draw_dim: str) -> xr.DataArray:
    if draw_dim in length.dims:
        return mean_over(length.astype(float), draw_dim, length.notnull())
    return length.astype(float)


def length_buckets(
    length: xr.DataArray, n_buckets: int, *, dim: str = "question", draw_dim: str = "draw"
) -> xr.DataArray:
    """Equal-size buckets of questions by their mean reasoning length.

    Parameters
    ----------
    length : xarray.DataArray
        Reasoning length (tokens, agent actions or optimizer steps), dims including ``dim``;
        if it has ``draw_dim`` it is first averaged over the draws (NaN skipped). Buckets
        are formed separately for every index of the other dims (each (model, size, budget)
        line has its own lengths).
    n_buckets : int
        Number of buckets (≥ 1). The paper leaves it OPEN: a config value.
    dim, draw_dim : str
        Question and draw dims.

    Returns
    -------
    xarray.DataArray
        Integer bucket id, dims of ``length`` minus ``draw_dim``, named ``bucket``: 0 holds
        the shortest questions, ``n_buckets - 1`` the longest; −1 where the length is NaN.
        With k questions of finite length, the sizes are those of ``numpy.array_split``:
        the first ``k mod n`` buckets hold ⌈k/n⌉ questions, the others ⌊k/n⌋ (they differ
        by ≤ 1; a bucket is empty when k < n). Equal lengths keep question order (stable
        sort).

    Raises
    ------
    ValueError
        ``n_buckets`` < 1 or ``dim`` missing.

    Notes
    -----
    ``docs/science.md#length-buckets``.
    """
    require(length, "length", dim)
    if int(n_buckets) != n_buckets or n_buckets < 1:
        raise ValueError(f"n_buckets must be a positive integer, got {n_buckets}")
    q = _question_length(length, draw_dim)
    qt = q.transpose(..., dim)
    vals = np.asarray(qt.values, dtype=float)
    flat = vals.reshape(-1, vals.shape[-1])
    ids = np.full(flat.shape, -1, dtype=np.int64)
    for row, out in zip(flat, ids, strict=True):
        idx = np.flatnonzero(np.isfinite(row))
        order = idx[np.argsort(row[idx], kind="stable")]
        for b, members in enumerate(np.array_split(order, int(n_buckets))):
            out[members] = b
    res = xr.DataArray(ids.reshape(vals.shape), dims=qt.dims, coords=qt.coords, name="bucket")
    return res.transpose(*q.dims)


def incoherence_by_group(
    variance: xr.DataArray,
    error: xr.DataArray,
    groups: xr.DataArray,
    *,
    n_groups: int | None = None,
    labels: Sequence[Hashable] | None = None,
    length: xr.DataArray | None = None,
    bias: xr.DataArray | None = None,
    dim: str = "question",
    draw_dim: str = "draw",
    group_dim: str = "group",
) -> xr.Dataset:
    """Incoherence (ratio of sums) within each group of questions.

    Parameters
    ----------
    variance, error : xarray.DataArray
        Per-question variance and error, dims including ``dim``.
    groups : xarray.DataArray
        Integer group id per question (−1 = in no group), e.g. from :func:`length_buckets`
        or :func:`difficulty_groups`; broadcast against ``variance``.
    n_groups : int, optional
        Number of groups; default ``len(labels)``, else ``groups.max() + 1``.
    labels : sequence, optional
        Coordinate labels of ``group_dim`` (default 0..n_groups−1).
    length : xarray.DataArray, optional
        Reasoning length (with or without ``draw_dim``); adds ``length`` = mean over the
        group's questions of their mean length.
    bias : xarray.DataArray, optional
        Per-question bias; adds its mean.
    dim, draw_dim, group_dim : str
        Question dim (reduced), draw dim of ``length``, and the new group dim.

    Returns
    -------
    xarray.Dataset
        New dim ``group_dim`` plus the broadcast dims minus ``dim``: ``incoherence``
        (Σ variance / Σ error), ``variance``, ``error`` (and ``bias``, ``length``) means,
        ``n_questions``; all over the group's questions where variance and error are finite.
    """
    if labels is not None and n_groups is None:
        n_groups = len(labels)
    if n_groups is None:
        n_groups = int(groups.max()) + 1
    if n_groups < 1:
        raise ValueError(f"need at least one group, got n_groups={n_groups} (are all group ids -1?)")
    if labels is None:
        labels = list(range(n_groups))
    if len(labels) != n_groups:
        raise ValueError(f"{len(labels)} labels for {n_groups} groups")
    both = variance.notnull() & error.notnull()
    qlen = None if length is None else _question_length(length, draw_dim)
    parts = []
    for g in range(n_groups):
        m = (groups == g) & both
        v = {
            "incoherence": incoherence(variance.where(m), error.where(m), dim),
            "variance": mean_over(variance, dim, m),
            "error": mean_over(error, dim, m),
            "n_questions": m.sum(dim),
        }
        if bias is not None:
            v["bias"] = mean_over(bias, dim, m)
        if qlen is not None:
            v["length"] = mean_over(qlen, dim, m)
        parts.append(xr.Dataset(v))
    out = xr.concat(parts, dim=group_dim)
    return out.assign_coords({group_dim: list(labels)})


def incoherence_by_bucket(
    variance: xr.DataArray,
    error: xr.DataArray,
    length: xr.DataArray,
    n_buckets: int,
    *,
    bias: xr.DataArray | None = None,
    dim: str = "question",
    draw_dim: str = "draw",
    bucket_dim: str = "bucket",
) -> xr.Dataset:
    """Incoherence against reasoning length: equal-size length buckets, one ratio per bucket.

    Buckets are formed per line (every index of the dims other than ``dim``, e.g. each
    (model, size, budget)) from the questions whose mean length, variance and error are all
    finite, with :func:`length_buckets`.

    Parameters
    ----------
    variance, error : xarray.DataArray
        Per-question variance and error, dims e.g. ``(model, size, budget, question)``.
    length : xarray.DataArray
        Reasoning length per draw (with ``draw_dim``) or per question, in tokens / actions
        / steps.
    n_buckets : int
        Number of buckets (OPEN in the paper: a config value).
    bias, dim, draw_dim, bucket_dim
        See :func:`incoherence_by_group`.

    Returns
    -------
    xarray.Dataset
        Dim ``bucket_dim`` (0 = shortest) plus the line dims: ``incoherence``, ``length``
        (x: mean length of the bucket's questions), ``variance``, ``error`` (and ``bias``)
        means, ``n_questions``.

    Notes
    -----
    ``docs/science.md#length-buckets``; Fig. 2.
    """
    qlen = _question_length(length, draw_dim)
    keep = variance.notnull() & error.notnull()
    ids = length_buckets(qlen.where(keep), n_buckets, dim=dim, draw_dim=draw_dim)
    return incoherence_by_group(
        variance,
        error,
        ids,
        n_groups=n_buckets,
        length=qlen,
        bias=bias,
        dim=dim,
        draw_dim=draw_dim,
        group_dim=bucket_dim,
    )


def difficulty_groups(
    length_ref: xr.DataArray,
    n_groups: int = 5,
    labels: Sequence[str] = DIFFICULTY_LABELS,
    *,
    dim: str = "question",
    draw_dim: str = "draw",
) -> xr.DataArray:
    """Equal-size difficulty groups of questions by a reference model's reasoning length.

    Parameters
    ----------
    length_ref : xarray.DataArray
        The reference model's (Qwen3-32B in the paper) reasoning length in tokens, dims
        ``(question,)`` or ``(question, draw)`` (averaged over draws). Select the reference
        model/size first; the result is then shared by every size (it has no size dim).
    n_groups : int, default 5
    labels : sequence of str, default ("Easy", "Easy-Medium", "Medium", "Medium-Hard", "Hard")
        One label per group, shortest (easiest) first.
    dim, draw_dim : str

    Returns
    -------
    xarray.DataArray
        Integer group id per question (0 = Easy, −1 = no reference length), named
        ``difficulty``, with ``attrs["labels"]``. Sizes as in :func:`length_buckets`. Pass
        it with ``labels`` to :func:`incoherence_by_group` (``group_dim="difficulty"``).

    Raises
    ------
    ValueError
        ``len(labels) != n_groups``.

    Notes
    -----
    ``docs/science.md#difficulty-groups``; Figs. 4a, 5.
    """
    if len(labels) != n_groups:
        raise ValueError(f"{len(labels)} labels for {n_groups} difficulty groups")
    ids = length_buckets(length_ref, n_groups, dim=dim, draw_dim=draw_dim).rename("difficulty")
    ids.attrs["labels"] = list(labels)
    return ids


def _aligned(a: xr.DataArray, b: xr.DataArray) -> bool:
    """Same dims, shape and indexes: no broadcast needed."""
    if a.dims != b.dims or a.shape != b.shape or set(a.indexes) != set(b.indexes):
        return False
    return all(a.indexes[k].equals(b.indexes[k]) for k in a.indexes)


class MedianSplit(tuple):
    """``(short, long)`` draw masks of :func:`median_split`, unpacking as a pair.

    Attributes
    ----------
    short, long : xarray.DataArray
        Boolean draw masks, dims of the length input.
    kept : xarray.DataArray
        Boolean per question (dims of the length minus ``draw``): both halves non-empty.
    n_dropped : xarray.DataArray
        Questions that ran (≥ 1 finite length) but left both halves, counted over the
        question dim (int, per line).
    """

    short: xr.DataArray
    long: xr.DataArray
    kept: xr.DataArray
    n_dropped: xr.DataArray

    def __new__(cls, short, long, kept, n_dropped):
        obj = super().__new__(cls, (short, long))
        obj.short, obj.long, obj.kept, obj.n_dropped = short, long, kept, n_dropped
        return obj


def median_split(
    length: xr.DataArray,
    *,
    draw_dim: str = "draw",
    question_dim: str = "question",
    ties: str = "paper",
) -> MedianSplit:
    """Split each question's draws at that question's median reasoning length.

    Parameters
    ----------
    length : xarray.DataArray
        Reasoning length per draw (tokens), dims including ``draw_dim``, e.g.
        ``(model, size, budget, question, draw)``; NaN = not run. The median is taken per
        index of every other dim.
    draw_dim, question_dim : str
        The draw dim (split) and the question dim (dropped questions are counted over it).
    ties : {"paper", "exclude", "rank"}
        ``"paper"`` (default, the paper's rule): short = length < the question's median,
        long = length ≥ median. ``"exclude"``: short < median < long (draws at the median
        belong to neither). ``"rank"``: sort the valid draws by length (ties by draw
        order); the first ⌊n/2⌋ are short, the last ⌊n/2⌋ long.

    Returns
    -------
    MedianSplit
        Unpacks as ``(short, long)``, boolean DataArrays with the dims of ``length``, False
        where the length is NaN. Under every rule the two halves cover the **same
        questions**: a question with an empty half (e.g. every draw at the budget cap) is
        removed from both, and ``.n_dropped`` counts such questions per line (``.kept`` marks
        the questions kept).

    Raises
    ------
    ValueError
        An unknown ``ties`` or ``draw_dim`` missing.

    Notes
    -----
    ``docs/science.md#median-split``; Fig. 3.
    """
    require(length, "length", draw_dim)
    if ties not in ("paper", "exclude", "rank"):
        raise ValueError(f"ties must be 'paper', 'exclude' or 'rank', got {ties!r}")
    length = as_float(length)
    valid = length.notnull()
    if ties in ("paper", "exclude"):
        with quiet():
            med = length.median(draw_dim, skipna=True)
        short = (length < med) & valid
        long_ = ((length >= med) if ties == "paper" else (length > med)) & valid
    else:
        lt = length.transpose(..., draw_dim)
        v = np.asarray(lt.values)
        fin = np.isfinite(v)
        order = np.argsort(np.where(fin, v, np.inf), axis=-1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(v.shape[-1])[(None,) * (v.ndim - 1)], axis=-1)
        n = fin.sum(-1, keepdims=True)
        half = n // 2

        def mk(a: np.ndarray) -> xr.DataArray:
            return xr.DataArray(a, dims=lt.dims, coords=lt.coords).transpose(*length.dims)

        short, long_ = mk((rank < half) & fin), mk((rank >= n - half) & fin)
    kept = short.any(draw_dim) & long_.any(draw_dim)
    dropped = valid.any(draw_dim) & ~kept
    n_dropped = dropped.sum(question_dim) if question_dim in dropped.dims else dropped.astype(int)
    return MedianSplit(short & kept, long_ & kept, kept, n_dropped.rename("n_dropped"))


def overthinking(
    probs: xr.DataArray,
    target: xr.DataArray | int,
    length: xr.DataArray,
    *,
    dim: str = "option",
    draw_dim: str = "draw",
    question_dim: str = "question",
    ties: str = "paper",
    delta: float = DEFAULT_DELTA,
) -> xr.Dataset:
    """Accuracy and KL incoherence of the short and the long half of each question's draws.

    Parameters
    ----------
    probs, target, dim, draw_dim, delta
        As in :func:`~hotmess.core.metrics.kl_decomposition`.
    length : xarray.DataArray
        Reasoning length per draw (tokens), dims of ``probs`` minus ``dim``.
    question_dim : str
        Summed over for the benchmark-level numbers.
    ties : str
        See :func:`median_split` (default: the paper's rule).

    Returns
    -------
    xarray.Dataset
        New dim ``half`` = ["short", "long"]. Benchmark level (dims of ``probs`` minus
        option, draw, question): ``accuracy`` (mean over questions of the per-question
        accuracy, ties split fractionally), ``incoherence`` (KL, ratio of sums), ``length``
        (mean length), ``n_questions`` (questions in both halves) and ``n_dropped``
        (questions that ran but had an empty half; the same for both halves). Per question:
        ``question_accuracy``, ``bias``, ``variance``, ``error`` (KL, nats),
        ``question_length``. Both halves average over the same questions.

    Notes
    -----
    ``docs/science.md#median-split``; Fig. 3.
    """
    split = median_split(length, draw_dim=draw_dim, question_dim=question_dim, ties=ties)
    parts = []
    for mask in (split.short, split.long):
        p = probs.where(mask)
        kl = kl_decomposition(p, target, dim=dim, draw_dim=draw_dim, delta=delta)
        acc = accuracy(p, target, dim=dim, draw_dim=draw_dim)
        qlen = mean_over(as_float(length), draw_dim, mask)
        parts.append(
            xr.Dataset(
                {
                    "accuracy": mean_over(acc, question_dim, acc.notnull()),
                    "incoherence": incoherence(kl.variance, kl.error, question_dim),
                    "length": mean_over(qlen, question_dim, qlen.notnull()),
                    "n_questions": acc.notnull().sum(question_dim),
                    "n_dropped": split.n_dropped,
                    "question_accuracy": acc,
                    "bias": kl.bias,
                    "variance": kl.variance,
                    "error": kl.error,
                    "question_length": qlen,
                }
            )
        )
    out = xr.concat(parts, dim="half", data_vars="all").assign_coords(half=["short", "long"])
    out.attrs.update(split=ties, ties="fractional")
    return out
