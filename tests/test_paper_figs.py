"""SWE-bench, model-written-eval and transcript figures on constructed cubes with known
answers: every number of each builder's JSON against an independent numpy recomputation
(tests/paper_cubes.py) and hand-computed cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from paper_cubes import (
    embedding_cube,
    mc_cube,
    np_bucket_line,
    np_buckets,
    np_halves,
    np_kl,
    np_mc_line,
    num,
    swe_cube,
    write,
)

from hotmess.paper.build import build_figures

HAND_TASK = [[1, 0, np.nan], [1, 1, np.nan], [0, 0, np.nan], [1, 0, np.nan]]


def test_hand_computed_coverage_error_in_a_one_task_bucket(tmp_path):
    """ȳ = (3/4, 1/4): bias² = (1/16 + 9/16)/2 = 5/16, variance = (3/16 + 3/16)/2 = 3/16,
    error = 1/2, incoherence = 3/8, score = 1/4 (only run 2 passes every test)."""
    passes = np.array([HAND_TASK, [[1, 1, 1]] * 4])  # task1 always passes: error 0
    ds = swe_cube(passes, [[1, 2, 3, 4], [9, 9, 9, 9]])
    write(ds, tmp_path / "r", "swebench_probe")
    rep = build_figures(tmp_path / "r", tmp_path / "f", only=["fig02b"], settings={"n_buckets": 2}, index=False)
    assert rep.ok and "fig02b" in rep.built
    line = json.loads((tmp_path / "f" / "fig02b.json").read_text())["data"]["lines"][0]
    assert line["x"] == [2.5, 9.0]
    assert line["bias"][0] == pytest.approx(5 / 16) and line["variance"][0] == pytest.approx(3 / 16)
    assert line["error"][0] == pytest.approx(1 / 2) and line["incoherence"][0] == pytest.approx(3 / 8)
    assert line["score"] == [0.25, 1.0]
    assert line["incoherence"][1] is None  # error 0: incoherence undefined, never 0/0


@pytest.fixture(scope="module")
def swe(tmp_path_factory):
    rng = np.random.default_rng(7)
    nm, nq, nd, nt = 2, 7, 4, 3
    p = rng.uniform(0.2, 0.9, size=(nm, nq, 1, nt))
    passes = (rng.random((nm, nq, nd, nt)) < p).astype(float)
    passes[:, 5, :, 2] = np.nan  # task 5 has two tests
    passes[0, 0] = np.array(HAND_TASK)
    actions = rng.integers(1, 12, size=(nm, nq, nd)).astype(float)
    actions[:, 3] = [3, 3, 3, 5]  # ties at the median: every run at/above it, the task leaves the split
    rt = rng.integers(10, 500, size=(nm, nq, nd)).astype(float)
    rt[1] = np.nan  # model 2 reports no reasoning tokens
    ds = swe_cube(passes, actions, reasoning_tokens=rt, models=("m1", "m2"))
    root = tmp_path_factory.mktemp("swe")
    write(ds, root / "results", "swebench_probe")
    rep = build_figures(root / "results", root / "figures", only=["fig02b", "fig03b", "fig17b", "fig25"],
                        settings={"n_buckets": 3}, index=False)
    assert rep.ok, rep.failed
    data = {n: json.loads((root / "figures" / f"{n}.json").read_text()) for n in rep.built}
    return passes, actions, ds, data


def test_fig02b_and_fig25_buckets_match_numpy(swe):
    passes, actions, ds, data = swe
    lengths = {"actions": actions, "output_tokens": ds["output_tokens"].values[:, 0, 0],
               "reasoning_tokens": ds["reasoning_tokens"].values[:, 0, 0]}
    assert data["fig02b"]["settings"]["n_buckets"] == 3 and data["fig02b"]["options"] == {"n_buckets": 3}
    for m, line in enumerate(data["fig02b"]["data"]["lines"]):
        exp = np_bucket_line(passes[m], actions[m], 3)
        for key, vals in exp.items():
            np.testing.assert_allclose(num(line[key]), vals, rtol=1e-12, err_msg=key)
    cols = data["fig25"]["data"]["columns"]
    for length, arr in lengths.items():
        for m, line in enumerate(cols[length]):
            if m == 1 and length == "reasoning_tokens":
                assert line["x"] == [] and "NaN" in line["note"]
                continue
            exp = np_bucket_line(passes[m], arr[m], 3)
            for key, vals in exp.items():
                np.testing.assert_allclose(num(line[key]), vals, rtol=1e-12, err_msg=f"{length} {key}")
    # claim rows: the longest bucket vs the shortest, per line, as numpy says
    claim = data["fig02b"]["claims"][0]
    expected = [(np_bucket_line(passes[m], actions[m], 3)["incoherence"][-1]
                 > np_bucket_line(passes[m], actions[m], 3)["incoherence"][0]) for m in range(2)]
    assert claim["value"] == f"{sum(expected)}/2 lines"
    assert claim["verdict"] == ("agrees" if all(expected) else "disagrees")
    assert data["fig25"]["claims"][0]["value"].endswith("/5 lines")  # reasoning tokens of m2: not computable


def _paper_rule() -> bool:
    import inspect

    from hotmess.core import metrics

    return inspect.signature(metrics.median_split).parameters["ties"].default == "paper"


@pytest.mark.xfail(not _paper_rule(), strict=True,
                   reason="needs hotmess.core.metrics.median_split with the paper's rule as default "
                          "(below vs at/above the median; the metrics branch)")
def test_fig03b_fig17b_median_split_matches_numpy(swe):
    passes, actions, _, data = swe
    for name in ("fig03b", "fig17b"):
        for m, line in enumerate(data[name]["data"]["lines"]):
            exp = np_halves(passes[m], actions[m])
            for half in ("short", "long"):
                for key, val in exp[half].items():
                    assert line[half][key] == pytest.approx(val, rel=1e-12), (name, half, key)
    rows = data["fig17b"]["data"]["lines"]
    tol = data["fig17b"]["settings"]["similar_score"]
    ok = [r["long"]["incoherence"] > r["short"]["incoherence"]
          and abs(r["long"]["score"] - r["short"]["score"]) <= tol for r in rows]
    assert data["fig17b"]["claims"][0]["value"] == f"{sum(ok)}/2 lines"


# ----------------------------------------------------------------------------- MWE
SUBSETS = ["corrigible-more-HHH", "myopic-reward", "power-seeking-inclination", "survival-instinct",
           "wealth-seeking-inclination", "coordinate-other-ais"]


@pytest.fixture(scope="module")
def mwe(tmp_path_factory):
    rng = np.random.default_rng(3)
    nm, per, nd = 2, 4, 6
    subjects = [s for s in SUBSETS for _ in range(per)]
    nq = len(subjects)
    n_opt = rng.choice([2, 3], size=nq)
    choices = np.stack([rng.integers(0, n_opt[:, None], size=(nq, nd)) for _ in range(nm)])
    choices[rng.random(choices.shape) < 0.1] = -1  # unparsed: uniform vector
    target = rng.integers(0, n_opt)
    tokens = rng.integers(20, 400, size=(nm, nq, nd)).astype(float)
    mc = mc_cube(choices, target, tokens, n_options=n_opt, subjects=subjects, models=("m1", "m2"))
    # open-ended: two draws at c ± r u, so the variance is exactly r²; model m1 on the law r² = 1e-6 x^1.5
    nq_o = 12
    sub_o = [s for s in SUBSETS[:3] for _ in range(4)]
    x = np.geomspace(10, 1000, nq_o)
    r2 = np.stack([1e-6 * x ** 1.5, rng.uniform(1e-5, 1e-1, nq_o)])
    u = rng.normal(size=(nm, nq_o, 8))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    c = rng.normal(size=(nm, nq_o, 8))
    emb = np.stack([c + np.sqrt(r2)[..., None] * u, c - np.sqrt(r2)[..., None] * u], axis=2)
    tok_o = np.stack([x - 3, x + 3], axis=-1)[None].repeat(nm, 0)  # mean = x
    op = embedding_cube(emb, tok_o, sub_o, models=("m1", "m2"))
    root = tmp_path_factory.mktemp("mwe")
    write(mc, root / "results", "mwe_cpu")
    write(op, root / "results", "mwe_open_cpu")
    rep = build_figures(root / "results", root / "figures", only=["fig02c", "fig23", "fig24", "fig19"],
                        settings={"n_buckets": 2, "fig19.top_k": 3}, index=False)
    assert rep.ok, rep.failed
    data = {n: json.loads((root / "figures" / f"{n}.json").read_text()) for n in rep.built}
    return {"mc": mc, "op": op, "data": data, "r2": r2, "x": x, "subjects": subjects, "sub_o": sub_o,
            "report": rep}


def test_fig23_and_fig02c_mc_match_numpy(mwe):
    data, mc = mwe["data"], mwe["mc"]
    per = data["fig23"]["data"]["subsets"]
    assert list(per) == SUBSETS[:5]  # the paper's five, in panel order
    for subset, lines in per.items():
        assert [ln["label"] for ln in lines] == ["m1 s · budget 16", "m2 s · budget 16"]
        for m, line in enumerate(lines):
            for key, vals in np_mc_line(mc, m, subset, 2).items():
                np.testing.assert_allclose(line[key], vals, rtol=1e-9, atol=1e-12, err_msg=f"{subset} {key}")
    left = data["fig02c"]["data"]["mc"]
    assert data["fig02c"]["data"]["mc_subset"] == "survival-instinct"
    for m, line in enumerate(left):
        for key, vals in np_mc_line(mc, m, "survival-instinct", 2).items():
            np.testing.assert_allclose(line[key], vals, rtol=1e-9, atol=1e-12, err_msg=key)


def test_fig02c_open_buckets_and_fig24_fits(mwe):
    data, r2, x, sub_o = mwe["data"], mwe["r2"], mwe["x"], mwe["sub_o"]
    right = data["fig02c"]["data"]["open"]
    for m, line in enumerate(right):  # all subsets, 2 buckets of 6 questions by mean tokens
        b = np_buckets(x, 2)
        np.testing.assert_allclose(line["x"], [x[i].mean() for i in b], rtol=1e-12)
        np.testing.assert_allclose(line["variance"], [r2[m][i].mean() for i in b], rtol=1e-9)
    per = data["fig24"]["data"]["subsets"]
    assert list(per) == SUBSETS[:3] and data["fig24"]["data"]["display_floor"] == 1e-4
    for s, lines in per.items():
        qs = [i for i, t in enumerate(sub_o) if t == s]
        for m, line in enumerate(lines):
            np.testing.assert_allclose(line["variance"], r2[m][qs], rtol=1e-9)
            slope, icpt = np.polyfit(np.log(x[qs]), np.log(r2[m][qs]), 1)
            assert line["fit"]["slope"] == pytest.approx(slope, rel=1e-6)
            assert line["fit"]["prefactor"] == pytest.approx(np.exp(icpt), rel=1e-6)
            assert line["fit"]["n_points"] == 4 and line["fit"]["n_excluded"] == 0
            if m == 0:  # on the law: slope 1.5, prefactor 1e-6, R² = 1, points below 1e-4 included
                assert line["fit"]["slope"] == pytest.approx(1.5, rel=1e-6)
                assert line["fit"]["r2"] == pytest.approx(1.0)
    assert min(r2[0]) < 1e-4  # some points lie below the display floor and still enter the fit
    claim = data["fig24"]["claims"][0]
    slopes = [ln["fit"]["slope"] for lines in per.values() for ln in lines]
    assert claim["value"] == pytest.approx(sum(s > 0 for s in slopes) / len(slopes))


def test_fig24_display_is_clipped_but_fit_uses_every_point(mwe):
    import matplotlib

    matplotlib.use("Agg")
    from hotmess.paper.mwe_figs import fig24

    fig, nums = fig24({"mwe_open_cpu": mwe["op"]}, {"display_floor": 1e-4, "subsets": "all"})
    ys = np.concatenate([c.get_offsets()[:, 1] for ax in fig.axes for c in ax.collections])
    assert ys.min() == pytest.approx(1e-4)  # the points below the floor are drawn at it
    fig2, nums2 = fig24({"mwe_open_cpu": mwe["op"]}, {"display_floor": 1e-9, "subsets": "all"})
    assert nums2["subsets"] == nums["subsets"]  # the floor changes the drawing only


def test_fig19_top_questions_and_draws(tmp_path):
    # q0 alternates A/B (highest variance), q1 always A, q2 A five times then B, q3 four A two C
    choices = np.array([[0, 1, 0, 1, 0, 1], [0] * 6, [0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 2, 2]])
    tokens = np.arange(24).reshape(4, 6) + 10
    ds = mc_cube(choices, [0, 0, 0, 0], tokens, experiment="cpu_demo")
    write(ds, tmp_path / "r", "cpu_demo")
    rep = build_figures(tmp_path / "r", tmp_path / "f", only=["fig19"], settings={"top_k": 2}, index=False)
    assert rep.ok and rep.built["fig19"].name == "fig19.json"  # data only: no PNG
    assert not (tmp_path / "f" / "fig19.png").exists()
    data = json.loads((tmp_path / "f" / "fig19.json").read_text())["data"]
    (line,) = data["lines"]
    var = [np_kl(ds["outcome"].values[0, 0, 0, q], 0)[1] for q in range(4)]
    expected = [f"q{i}" for i in np.argsort(var, kind="stable")[::-1][:2]]
    assert [q["id"] for q in line["questions"]] == expected == ["q0", "q3"]
    q0 = line["questions"][0]
    assert q0["variance"] == pytest.approx(var[0]) and q0["answers"] == {"A": 3, "B": 3}
    assert q0["flip_rate"] == 1.0 and line["questions"][1]["flip_rate"] == pytest.approx(1 / 5)
    assert [d["choice"] for d in q0["draws"]] == list("ABABAB")
    assert [d["reasoning_text"] for d in q0["draws"]] == [f"reasoning of model 0 question 0 draw {d}" for d in range(6)]
    assert [d["output_tokens"] for d in q0["draws"]] == list(range(10, 16))
    assert {d["finish_reason"] for d in q0["draws"]} == {"stop"}
    claim = json.loads((tmp_path / "f" / "fig19.json").read_text())["claims"][0]
    assert claim["verdict"] == "agrees" and claim["value"] == 1.0
