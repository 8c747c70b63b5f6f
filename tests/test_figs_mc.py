"""Multiple-choice figure builders (paper/mc_*.py) on constructed cubes with known answers, and
on bad input. The expected values come from closed forms or from the numpy implementation in
tests/figs_mc_make.py, never from hotmess.core.metrics."""

from __future__ import annotations

import numpy as np
import pytest
from figs_mc_make import cube, np_brier, np_kl, onehot

from hotmess.paper import mc_budget, mc_common, mc_length, mc_scaling, mc_tables
from hotmess.paper.build import load_builders
from hotmess.paper.claims import VERDICTS

MC_FIGURES = sorted(n for n, s in load_builders().items()
                    if s.build.__module__.split(".")[-1] in ("mc_length", "mc_scaling", "mc_budget", "mc_tables"))


def test_every_figure_of_issue_9_is_registered():
    want = {"fig02a", "fig03a", "fig04a", "fig05", "fig07a", "fig07b", "fig08", "fig09", "fig10", "fig11", "fig12",
            "fig13", "fig14", "fig15", "fig16", "fig17a", "fig18", "fig20", "fig21", "fig22", "table01"}
    assert want <= set(MC_FIGURES)
    specs = load_builders()
    for n in MC_FIGURES:
        assert specs[n].caption and specs[n].variables and specs[n].cubes, n


# --------------------------------------------------------------------------- closed forms

CHOICES = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 2], [1, 1, 1, 1], [0, 1, 2, 3], [2, 2, 0, 0]])


def _fig02_cube():
    p = onehot(CHOICES)[None, None, None]  # (1, 1, 1, 6, 4, 4)
    lengths = np.array([10, 20, 30, 40, 50, 60], float)[:, None] * np.ones(4)
    return cube(p, 0, output_tokens=lengths[None, None, None], models=["qwen3"], sizes=["1.7B"], budgets=["none"])


@pytest.mark.parametrize("family", ["kl", "brier"])
def test_fig02a_bucket_incoherence_closed_form(family):
    ds = _fig02_cube()
    _, nums = mc_length.build_fig02a({"gpqa_qwen3": ds}, {"n_buckets": 2, "metric_family": family})
    (line,) = nums["lines"]
    assert line["x"] == [20.0, 50.0] and line["n_questions"] == [3, 3]
    ref = np_kl if family == "kl" else np_brier
    dec = [ref(onehot(c), 0) for c in CHOICES]
    for b, qs in enumerate(([0, 1, 2], [3, 4, 5])):
        want = sum(dec[q][1] for q in qs) / sum(dec[q][2] for q in qs)
        assert line[f"{family}_incoherence"][b] == pytest.approx(want, rel=1e-9)
    if family == "brier":  # closed form for one-hot draws with frequencies p: var = 1 - Σp², err = 2(1 - p_t)
        freqs = [np.bincount(c, minlength=4) / 4 for c in CHOICES]
        var = [1 - (f**2).sum() for f in freqs]
        err = [2 * (1 - f[0]) for f in freqs]
        assert line["brier_incoherence"][0] == pytest.approx(sum(var[:3]) / sum(err[:3]), rel=1e-9)


def test_fig05_power_law_per_group_recovers_alpha_and_r2():
    N = np.array([1e9, 2e9, 4e9, 8e9])
    alphas = {"Group 1": 0.5, "Group 2": 0.2}
    wiggle = np.array([1.0, 1.1, 0.9, 1.0])  # known multiplicative noise: R² < 1
    Q, fbar = 10, np.array([0.4, 0.3, 0.2, 0.1])
    e = np.array([1, -1, 0, 0]) / np.sqrt(2)
    p = np.zeros((1, 4, 1, Q, 2, 4))
    for si, n in enumerate(N):
        for q in range(Q):
            a = alphas["Group 1"] if q < 5 else alphas["Group 2"]
            d = np.sqrt(0.01 * (n / 1e9) ** -a * wiggle[si])
            p[0, si, 0, q] = [fbar + d * e, fbar - d * e]
    lengths = np.broadcast_to(np.arange(1, Q + 1)[:, None] * 100.0, (1, 4, 1, Q, 2))
    ds = cube(p, 0, params=N[None], output_tokens=lengths, models=["qwen3"], sizes=["1B", "2B", "4B", "8B"])
    _, nums = mc_scaling.build_fig05({"mmlu_qwen3": ds}, {"n_groups": 2, "metric_family": "brier", "reference_size": "8B"})
    (t,) = nums["tables"]
    assert t["group_size"] == [5, 5] and t["reference"] == "8B"
    for g, a in alphas.items():
        y = 0.01 * (N / 1e9) ** -a * wiggle * (1 / (1 + 4e-12)) ** 2
        slope, icpt = np.polyfit(np.log(N), np.log(y), 1)
        r2 = 1 - ((np.log(y) - (icpt + slope * np.log(N))) ** 2).sum() / ((np.log(y) - np.log(y).mean()) ** 2).sum()
        fit = t["fits"]["brier"][g]["variance"]
        assert fit["alpha"] == pytest.approx(-slope, rel=1e-6) and fit["slope"] == pytest.approx(slope, rel=1e-6)
        assert fit["r2"] == pytest.approx(r2, rel=1e-6) and 0.8 < fit["r2"] < 1
        assert fit["alpha"] == pytest.approx(a, abs=0.05)
        # bias is the same at every size: ||y - fbar||² = 0.6² + 0.3² + 0.2² + 0.1²
        assert t["brier"]["bias"][int(g[-1]) - 1] == pytest.approx([0.5] * 4, rel=1e-9)
    claims = {c["measure"]: c for c in nums["claims"]}
    hv = next(c for m, c in claims.items() if "α_bias − α_variance" in m)
    assert hv["value"] == pytest.approx(0 - t["fits"]["brier"]["Group 2"]["variance"]["alpha"]) and hv["verdict"] == "disagrees"


def test_fig07b_variance_falls_as_one_over_E():
    rng = np.random.default_rng(3)
    Q, D = 300, 320
    mean = rng.dirichlet(np.ones(4) * 3, Q)
    p = np.stack([rng.dirichlet(m * 20, D) for m in mean])[None, None, None]
    ds = cube(p, 0, models=["o4_mini"], sizes=["default"], budgets=["medium"])
    _, nums = mc_budget.build_fig07b({"gpqa_ensembling": ds}, {})
    (row,) = nums["rows"]
    assert row["E"] == [1, 2, 4, 8, 16, 32] and row["skipped_E"] == []
    assert row["variance_fit"]["alpha"] == pytest.approx(1.0, abs=0.1)
    # E = 4: members are the means of draws 0-3, 4-7, ...; Brier variance across the 10 members
    want = np.mean([np_brier(p[0, 0, 0, q, :40].reshape(10, 4, 4).mean(1), 0)[1] for q in range(Q)])
    assert row["variance"][2] == pytest.approx(want, rel=1e-6)
    assert row["bias"][-1] == pytest.approx(row["bias"][0], rel=0.1)
    verdicts = {c["measure"].split(": ", 1)[1]: c["verdict"] for c in nums["claims"]}
    assert verdicts["power-law exponent of Brier variance vs E in [0.75, 1.25]"] == "agrees"
    # too few draws for E = 32 x 10: those E are left out, not an error
    _, few = mc_budget.build_fig07b({"gpqa_ensembling": ds.isel(draw=slice(0, 45))}, {})
    assert few["rows"][0]["E"] == [1, 2, 4] and few["rows"][0]["skipped_E"] == [8, 16, 32]


def test_fig20_known_distinct_answer_counts():
    A, B, C = 0, 1, 2
    choices = np.array([[A, A, A, A, A, A],   # q0: one answer
                        [A, A, B, A, A, A],   # q1: seeds disagree in context 0 only
                        [A, A, A, B, B, B],   # q2: contexts disagree, seeds agree
                        [A, B, C, B, B, B]])  # q3: 3-way tie in context 0 -> majority A (lowest)
    fe = np.zeros((4, 6))
    fe[0, 5] = 1  # a format error (uniform vector) in q0 is dropped, not a distinct answer
    p = onehot(choices)
    p[0, 5] = 0.25
    levels = ["Easy undergraduate level (or easier)", "Easy undergraduate level (or easier)",
              "Post-graduate level or harder (x)", "Post-graduate level or harder (x)"]
    ds = cube(p[None, None, None], 0, context=np.repeat([0, 1], 3), difficulty=levels, format_error=fe[None, None, None],
              models=["sonnet4"], sizes=["default"], budgets=["8k"])
    _, nums = mc_tables.build_fig20({"gpqa_frontier_letter": ds}, {})
    s = nums["panels"][0]["shares"]
    assert nums["levels"] == ["Easy undergraduate", "Post-graduate"]
    assert (s["Easy undergraduate"]["seed"], s["Easy undergraduate"]["context"], s["Easy undergraduate"]["all"]) == (25.0, 0.0, 50.0)
    assert (s["Post-graduate"]["seed"], s["Post-graduate"]["context"], s["Post-graduate"]["all"]) == (25.0, 100.0, 100.0)
    assert s["all levels"]["all"] == 75.0 and s["all levels"]["n_seed"] == 8


def test_wait_counting_rule_and_helpers():
    text = np.array(["Wait, wait. Waiting... Wait", None], dtype=object)
    assert mc_length.wait_counts(text)[0] == 2 and np.isnan(mc_length.wait_counts(text)[1])
    assert mc_length.wait_counts(text, case_sensitive=False)[0] == 3
    assert mc_length.wait_counts(text, match="substring")[0] == 3
    with pytest.raises(ValueError, match="wait_match"):
        mc_length.wait_counts(text, match="token")
    assert mc_common.trend_slope([10, 100], [0.1, 0.3]) == pytest.approx(0.2 / np.log(10))
    assert np.isnan(mc_common.trend_slope([10, 10], [0.1, 0.3]))
    assert mc_length.log_length_correlation([1, 10, 100, 1000], [2, 20, 200, 2000]) == pytest.approx(1.0)
    # correct-option probability ignores padded options (NaN in every draw of the question)
    p = np.array([[[0.5, 0.5, np.nan], [1.0, 0.0, np.nan]]])  # (question, draw, option)
    import xarray as xr
    da = xr.DataArray(p, dims=("question", "draw", "option"))
    assert float(mc_common.correct_probability(da, xr.DataArray([0], dims="question"))[0]) == 0.75


# --------------------------------------------------------------------------- bad input


def _base_cube(B=2, budgets=("low", "high")):
    rng = np.random.default_rng(0)
    ch = rng.integers(0, 4, (1, 2, B, 8, 6))
    return cube(onehot(ch), 0, output_tokens=rng.integers(5, 200, (1, 2, B, 8, 6)), budgets=list(budgets),
                reasoning_text="Wait. Hmm.", context=np.arange(6) // 3, models=["o3_mini"],
                difficulty=["Hard graduate level"] * 8)


def _all_inputs(spec, ds):
    return {c: ds for c in spec.cubes}


@pytest.mark.parametrize("name", MC_FIGURES)
def test_missing_variable_is_one_clear_line(name):
    spec = load_builders()[name]
    var = next(v for v in spec.variables if v not in ("outcome",))
    ds = _base_cube().drop_vars(var)
    with pytest.raises(mc_common.FigureInputError) as exc:
        spec.build(_all_inputs(spec, ds), {})
    msg = str(exc.value)
    assert "\n" not in msg and var in msg and f"figure {name}" in msg and "hotmess run experiment=" in msg


@pytest.mark.parametrize("name", MC_FIGURES)
def test_wrong_kind_of_cube_is_one_clear_line(name):
    spec = load_builders()[name]
    ds = _base_cube().rename({"option": "test"})
    ds.attrs["outcome_kind"] = "tests"
    with pytest.raises(mc_common.FigureInputError, match=r"of kind 'tests'"):
        spec.build(_all_inputs(spec, ds), {})


@pytest.mark.parametrize("name", MC_FIGURES)
def test_degenerate_cubes_build_a_documented_figure(name):
    """One budget, and every draw a format error (uniform vectors): the figure builds and its
    claims say "not enough data" or give a verdict; never a traceback."""
    import matplotlib.pyplot as plt

    spec = load_builders()[name]
    one = _base_cube(B=1, budgets=("high",))
    uniform = one.copy()
    uniform["outcome"] = uniform["outcome"] * 0 + 0.25
    uniform["format_error"] = uniform["format_error"] * 0 + 1
    for ds in (one, uniform):
        fig, nums = spec.build(_all_inputs(spec, ds), {})
        plt.close(fig)
        assert nums["claims"] and all(c["verdict"] in VERDICTS for c in nums["claims"])
    if name in ("fig07a",):
        assert nums["claims"][0]["verdict"] == "not enough data"


def test_one_budget_gives_not_enough_data_for_budget_claims():
    _, nums = mc_budget.build_fig07a({"gpqa_frontier": _base_cube(B=1, budgets=("high",))}, {})
    assert nums["claims"][0]["verdict"] == "not enough data"
    _, nums = mc_budget.build_fig07a({"gpqa_frontier": _base_cube()}, {})
    assert nums["claims"][0]["verdict"] in ("agrees", "disagrees") and len(nums["rows"][0]["levels"]) == 2


def test_one_size_is_one_point_not_an_error():
    ds = _base_cube().isel(size=[0])
    _, nums = mc_scaling.build_fig14({"mmlu_qwen3": ds}, {})
    assert nums["panels"][0]["fit"] is None and nums["claims"][0]["verdict"] == "not enough data"
    _, nums = mc_scaling.build_fig04a({"mmlu_qwen3": ds}, {})
    assert len(nums["tables"][0]["sizes"]) == 1 and nums["claims"][0]["verdict"] == "not enough data"


def test_table1_counts_and_rate():
    ds = _base_cube()
    fe = np.zeros(ds["format_error"].shape)
    fe[0, 0, 1, :3, 0] = 1
    ds["format_error"] = (ds["format_error"].dims, fe)
    _, nums = mc_tables.build_table01({"gpqa_frontier": ds}, {})
    row = next(r for r in nums["rows"] if r["size"] == "s0" and r["budget"] == "high")
    assert (row["count"], row["total"]) == (3, 48) and row["rate"] == pytest.approx(3 / 48)
    assert nums["claims"][0]["verdict"] == "disagrees" and nums["claims"][0]["value"] == pytest.approx(3 / 48)
    assert "o3_mini,s0,high,3,48,0.062500" in nums["table_csv"]
