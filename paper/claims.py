"""The paper's claims as measurable statements on a figure's own numbers.

Every figure builder states the paper's headline claim for its figure (``docs/science.md``,
figure list) as a :class:`Claim`: what the paper says, what we measure on this cube, the
measured value, and a verdict. Builders put ``[claim.to_dict(), ...]`` under the key
``"claims"`` of the numbers they return; ``hotmess paper`` prints them as one table and the
report page shows them.

Verdicts: ``"agrees"``, ``"disagrees"``, or ``"not enough data"`` (e.g. a size axis with one
point, fewer than two buckets) — never a guess.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

AGREES, DISAGREES, NOT_ENOUGH = "agrees", "disagrees", "not enough data"
VERDICTS = (AGREES, DISAGREES, NOT_ENOUGH)


@dataclass(frozen=True)
class Claim:
    """One claim row.

    Attributes
    ----------
    figure : str
        Figure name (``"fig05"``).
    paper : str
        The paper's claim in words.
    measure : str
        The statement tested on this cube, e.g. ``"KL incoherence slope vs log length > 0"``.
    value : float or str or None
        The measured number (or a short text such as ``"3/4 lines"``); ``None`` if not computable.
    verdict : {"agrees", "disagrees", "not enough data"}
    detail : str
        Optional: per-line values, the number of points, why there is not enough data.
    """

    figure: str
    paper: str
    measure: str
    value: Any
    verdict: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"claim verdict must be one of {VERDICTS}, not {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(d["value"], float) and not math.isfinite(d["value"]):
            d["value"] = None
        return d


def threshold_claim(
    figure: str,
    paper: str,
    measure: str,
    value: float | None,
    test: Callable[[float], bool],
    *,
    enough: bool = True,
    detail: str = "",
) -> Claim:
    """A claim decided by ``test(value)``; ``"not enough data"`` when ``enough`` is false or
    the value is missing / not finite."""
    if not enough or value is None or (isinstance(value, float) and not math.isfinite(value)):
        return Claim(figure, paper, measure, value, NOT_ENOUGH, detail)
    return Claim(figure, paper, measure, float(value), AGREES if test(float(value)) else DISAGREES, detail)


def all_claim(
    figure: str,
    paper: str,
    measure: str,
    results: dict[str, bool | None],
    *,
    detail: str = "",
) -> Claim:
    """A claim that must hold for every line (``results``: line label -> holds, ``None`` = not
    computable for that line). Value ``"k/n lines"``; ``"not enough data"`` when no line is
    computable."""
    known = {k: v for k, v in results.items() if v is not None}
    if not known:
        return Claim(figure, paper, measure, None, NOT_ENOUGH, detail or "no line with enough points")
    k = sum(bool(v) for v in known.values())
    failing = [name for name, v in known.items() if not v]
    extra = (detail + "; " if detail else "") + (f"fails for {failing}" if failing else "")
    return Claim(figure, paper, measure, f"{k}/{len(known)} lines",
                 AGREES if k == len(known) else DISAGREES, extra.strip("; "))
