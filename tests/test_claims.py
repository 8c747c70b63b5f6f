"""Claim rows: verdicts from thresholds and per-line checks, never a guess."""

import math

import pytest

from hotmess.paper.claims import AGREES, DISAGREES, NOT_ENOUGH, Claim, all_claim, threshold_claim


def test_threshold_claim_verdicts():
    up = threshold_claim("fig02a", "rises", "slope > 0", 0.12, lambda v: v > 0)
    assert (up.verdict, up.value) == (AGREES, 0.12)
    assert threshold_claim("f", "p", "m", -0.3, lambda v: v > 0).verdict == DISAGREES
    assert threshold_claim("f", "p", "m", math.nan, lambda v: v > 0).verdict == NOT_ENOUGH
    assert threshold_claim("f", "p", "m", 1.0, lambda v: v > 0, enough=False).verdict == NOT_ENOUGH
    assert threshold_claim("f", "p", "m", None, lambda v: v > 0).to_dict()["value"] is None


def test_all_claim_counts_lines_and_names_failures():
    c = all_claim("fig02a", "rises for every model", "slope > 0", {"a": True, "b": False, "c": None})
    assert c.verdict == DISAGREES and c.value == "1/2 lines" and "['b']" in c.detail
    assert all_claim("f", "p", "m", {"a": True}).verdict == AGREES
    assert all_claim("f", "p", "m", {"a": None}).verdict == NOT_ENOUGH


def test_bad_verdict_refused():
    with pytest.raises(ValueError, match="verdict"):
        Claim("f", "p", "m", 1.0, "probably")
