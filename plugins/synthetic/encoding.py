"""The number encoding of the synthetic optimizer (the paper's section 3, docs/science.md).

A float is written as ``2 + precision + 1`` tokens, no separator:

* one **sign** token, ``+`` or ``-`` (zero is ``+``);
* one **exponent digit** ``e`` in 0..9 meaning a factor ``10**-e`` (negative powers of ten
  only: the exponent is capped at 0, so ``|v| < 10``);
* ``precision + 1`` **mantissa digits** ``m0 m1 .. m_p`` meaning ``m0.m1..m_p``.

So ``v = sign * (m0.m1..m_p) * 10**-e``. With ``precision = 4`` a float is 7 tokens and an
``(x, u)`` pair in ``d = 4`` is 56 tokens, as in the paper.

Normal form: ``e = min(9, -floor(log10|v|))`` so that ``m0 != 0`` whenever ``|v| >= 1e-9``;
smaller magnitudes use ``e = 9`` with leading zeros (values below ``0.5e-9 * 10**-precision``
become zero). Rounding is half to even on the float64 product ``|v| * 10**(e + precision)``
(identical to correctly rounded decimal rounding except within ~1e-11 of a tie); a value that
rounds up to ``10.0`` moves to the next exponent. Values that do not fit (``|v| >=
10 - 0.5 * 10**-precision`` after rounding) raise :class:`EncodingRangeError`, or with
``clamp=True`` are clamped to ``+-9.99..9`` (the rollouts use this for diverging iterates and
count the clamps). NaN never encodes.

Vocabulary (12 tokens): ids 0-9 are the digits, 10 is ``-``, 11 is ``+``.
"""

from __future__ import annotations

import numpy as np

#: Token ids.
MINUS = 10
PLUS = 11
VOCAB = tuple("0123456789") + ("-", "+")
VOCAB_SIZE = len(VOCAB)
MAX_EXPONENT = 9


class EncodingRangeError(ValueError):
    """A value cannot be written in the encoding (NaN, or too large and not clamped)."""


def tokens_per_float(precision: int) -> int:
    """Tokens per float: sign + exponent digit + ``precision + 1`` mantissa digits."""
    if not 0 <= int(precision) <= 12:
        raise ValueError(f"precision must be in 0..12, not {precision!r}")
    return 3 + int(precision)


def max_value(precision: int) -> float:
    """The largest representable magnitude, ``10 - 10**-precision``."""
    return (10 ** (precision + 1) - 1) / 10**precision


def encode(values, precision: int = 4, *, clamp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Encode floats into tokens.

    Parameters
    ----------
    values : array_like, shape (...)
        Floats.
    precision : int
        Mantissa digits after the leading one (paper: 4).
    clamp : bool
        Clamp out-of-range magnitudes to :func:`max_value` instead of raising.

    Returns
    -------
    tokens : numpy.ndarray of uint8, shape (..., tokens_per_float(precision))
    clamped : numpy.ndarray of bool, shape (...)
        Where a value was clamped (all False unless ``clamp``).

    Raises
    ------
    EncodingRangeError
        NaN anywhere; or a magnitude that rounds to 10 or more and ``clamp`` is False
        (the message gives the first offending value).
    """
    p = int(precision)
    n_tok = tokens_per_float(p)
    v = np.asarray(values, dtype=np.float64)
    if np.isnan(v).any():
        raise EncodingRangeError("cannot encode NaN")
    a = np.abs(v)
    with np.errstate(divide="ignore"):
        e = np.where(a > 0, -np.floor(np.log10(np.where(a > 0, a, 1.0))), MAX_EXPONENT)
    e = np.clip(e, 0, MAX_EXPONENT).astype(np.int64)
    big = 10 ** (p + 1)
    finite = np.isfinite(a)
    af = np.where(finite, a, 0.0)

    def mantissa(e):
        return np.rint(af * 10.0 ** (e + p))

    m = mantissa(e)
    # log10 can be off by one next to powers of ten; rounding can carry to 10.0.
    up = (m >= big) & (e > 0)
    e = np.where(up, e - 1, e)
    m = np.where(up, mantissa(e), m)
    down = (m < big // 10) & (e < MAX_EXPONENT) & (af > 0)
    e = np.where(down, e + 1, e)
    m = np.where(down, mantissa(e), m)
    over = (m >= big) | ~finite
    if over.any():
        if not clamp:
            bad = v[over].flat[0]
            raise EncodingRangeError(
                f"value {bad!r} is outside the encoding's range |v| <= {max_value(p)} "
                f"(precision {p}); pass clamp=True to clamp"
            )
        e = np.where(over, 0, e)
        m = np.where(over, big - 1, m)
    m = m.astype(np.int64)
    out = np.empty(v.shape + (n_tok,), dtype=np.uint8)
    out[..., 0] = np.where((v < 0) & (m > 0), MINUS, PLUS)
    out[..., 1] = e
    for k in range(p + 1):
        out[..., 2 + k] = (m // 10 ** (p - k)) % 10
    return out, over


def decode(tokens, precision: int = 4) -> np.ndarray:
    """Decode tokens into floats (exactly: the mantissa integer divided by a power of ten).

    Parameters
    ----------
    tokens : array_like of int, shape (..., tokens_per_float(precision))

    Returns
    -------
    numpy.ndarray of float64, shape (...)

    Raises
    ------
    ValueError
        Wrong last-axis length, a sign position that holds a digit, or a digit position that
        holds a sign.
    """
    p = int(precision)
    t = np.asarray(tokens)
    n_tok = tokens_per_float(p)
    if t.shape[-1:] != (n_tok,):
        raise ValueError(f"expected a last axis of {n_tok} tokens (precision {p}), got shape {t.shape}")
    sign = t[..., 0]
    if not np.isin(sign, (MINUS, PLUS)).all():
        raise ValueError("a sign position holds a digit token")
    digits = t[..., 1:]
    if (digits > 9).any():
        raise ValueError("a digit position holds a sign token")
    e = digits[..., 0].astype(np.int64)
    m = np.zeros(t.shape[:-1], dtype=np.int64)
    for k in range(p + 1):
        m = m * 10 + digits[..., 1 + k]
    val = m.astype(np.float64) / 10.0 ** (e + p)
    return np.where(sign == MINUS, -val, val)


def to_text(tokens) -> str:
    """Tokens as text, e.g. ``"+312345"``."""
    return "".join(VOCAB[int(t)] for t in np.asarray(tokens).ravel())


def from_text(text: str) -> np.ndarray:
    """Text of vocabulary characters as token ids.

    Raises
    ------
    ValueError
        A character outside the vocabulary.
    """
    try:
        return np.array([VOCAB.index(c) for c in text], dtype=np.uint8)
    except ValueError:
        raise ValueError(f"{text!r} has a character outside the vocabulary {''.join(VOCAB)!r}") from None


def allowed_mask(n_floats: int, precision: int = 4) -> np.ndarray:
    """Constrained decoding: which token may appear at each position of ``n_floats`` floats.

    Returns
    -------
    numpy.ndarray of bool, shape (n_floats * tokens_per_float(precision), VOCAB_SIZE)
        Sign positions allow ``+``/``-``, every other position the digits 0-9.
    """
    n_tok = tokens_per_float(precision)
    mask = np.zeros((n_floats * n_tok, VOCAB_SIZE), dtype=bool)
    for pos in range(n_floats * n_tok):
        if pos % n_tok == 0:
            mask[pos, [MINUS, PLUS]] = True
        else:
            mask[pos, :10] = True
    return mask
