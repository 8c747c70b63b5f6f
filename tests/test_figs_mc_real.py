"""Every multiple-choice figure builder on REAL cubes made here on the CPU (Gemma 3 270M through
the hf backend on MMLU and on test-written GPQA-schema records; tests/figs_mc_cubes.py), built
through `hotmess paper`'s build_figures; the JSON numbers are checked against an independent
numpy recomputation from the cube (tests/figs_mc_make.py), not against hotmess.core.metrics.

Set FIGS_MC_CUBES=<dir> to reuse cubes made by `python tests/figs_mc_cubes.py <dir>`."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from figs_mc_cubes import GPQA_NAMES, MMLU, MMLU_NAMES, link, make
from figs_mc_make import np_brier, np_kl
from test_figs_mc import MC_FIGURES

from hotmess.core import metrics
from hotmess.paper.build import build_figures
from hotmess.paper.claims import VERDICTS

pytestmark = pytest.mark.slow
SETTINGS = {"n_buckets": 2, "n_ensembles": 2, "bootstrap_n": [2, 4, 8], "n_boot": 20}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    if not MMLU.exists():
        pytest.skip(f"local MMLU data not found at {MMLU}")
    base = Path(os.environ["FIGS_MC_CUBES"]) if os.environ.get("FIGS_MC_CUBES") else tmp_path_factory.mktemp("mc")
    cubes = {}
    for which, exp in (("gpqa", "gpqa_cpu"), ("mmlu", "cpu_demo")):
        path = base / which / exp / "cube.nc"
        cubes[which] = path if path.exists() else make(base / which, which)
    results = tmp_path_factory.mktemp("results")
    link(results, cubes["gpqa"], GPQA_NAMES)
    link(results, cubes["mmlu"], MMLU_NAMES)
    out = tmp_path_factory.mktemp("figures")
    report = build_figures(results, out, only=MC_FIGURES, settings=SETTINGS)
    data = {n: json.loads((out / f"{n}.json").read_text()) for n in report.built}
    return report, data, {k: xr.open_dataset(v).load() for k, v in cubes.items()}, out


def _cell(ds, m, s, b):
    c = ds.sel(model=m, size=s, budget=b)
    return c["outcome"].transpose("question", "draw", "option").values, c["target"].values


def _buckets(length, k):
    return np.array_split(np.argsort(length, kind="stable"), k)


def test_every_builder_builds_with_claims(built):
    report, data, _, out = built
    assert sorted(report.built) == MC_FIGURES
    for name, d in data.items():
        assert (out / f"{name}.pdf").exists() and (out / f"{name}.png").stat().st_size > 0
        claims = d["data"]["claims"]
        assert claims and all(c["verdict"] in VERDICTS and c["figure"] == name for c in claims), name
        assert all(len(v["sha256"]) == 64 for v in d["cubes"].values())


def test_fig02a_lines_match_numpy(built):
    _, data, cubes, _ = built
    d = data["fig02a"]["data"]
    ds = cubes["gpqa"]
    lines = [ln for ln in d["lines"] if ln["cube"] == "gpqa_frontier"]
    assert len(lines) == 4  # 2 "sizes" x 2 budgets (no frontier model names in this cube)
    for ln in lines:
        p, t = _cell(ds, ln["model"], ln["size"], ln["budget"])
        L = ds["output_tokens"].sel(model=ln["model"], size=ln["size"], budget=ln["budget"]).mean("draw").values
        dec = [np_kl(p[q], t[q]) for q in range(len(t))]
        for b, idx in enumerate(_buckets(L, 2)):
            assert ln["x"][b] == pytest.approx(L[idx].mean())
            want = sum(dec[q][1] for q in idx) / sum(dec[q][2] for q in idx)
            assert ln["kl_incoherence"][b] == pytest.approx(want, rel=1e-7, abs=1e-12)


def _split(L, rule):
    med = np.median(L)
    if rule == "paper":
        return L < med, L >= med
    return L < med, L > med


def test_fig03a_halves_match_numpy(built):
    _, data, cubes, _ = built
    ds = cubes["gpqa"]
    # which median rule does hotmess.core.metrics implement? (the paper's: long = at/above)
    s, lg = metrics.median_split(xr.DataArray([[1.0, 2.0, 2.0, 3.0]], dims=("question", "draw")))
    rule = "paper" if bool(lg.values[0, 1]) else "exclude"
    for row in data["fig03a"]["data"]["panels"]["gpqa_frontier"]:
        p, t = _cell(ds, row["model"], row["size"], row["budget"])
        L = ds["output_tokens"].sel(model=row["model"], size=row["size"], budget=row["budget"]).values
        for h, k in (("short", 0), ("long", 1)):
            var = err = 0.0
            for q in range(len(t)):
                halves = _split(L[q], rule)
                m = halves[k]
                # the paper's rule keeps the same questions in both halves
                if m.any() and (rule != "paper" or (halves[0].any() and halves[1].any())):
                    _, v, e = np_kl(p[q][m], t[q])
                    var, err = var + v, err + e
            want = var / err if err > 0 else None
            got = row["incoherence"][h]
            assert (got is None and want is None) or got == pytest.approx(want, rel=1e-7, abs=1e-12)


def test_fig07a_and_fig07b_match_numpy(built):
    _, data, cubes, _ = built
    ds = cubes["gpqa"]
    for row in data["fig07a"]["data"]["rows"]:
        assert row["budgets"] == ["4", "12"]  # models not in budget_levels keep every budget
        for b, inc in zip(row["budgets"], row["incoherence"], strict=True):
            p, t = _cell(ds, row["model"], row["size"], b)
            dec = [np_kl(p[q], t[q]) for q in range(len(t))]
            assert inc == pytest.approx(sum(x[1] for x in dec) / sum(x[2] for x in dec), rel=1e-7)
    for row in data["fig07b"]["data"]["rows"]:
        assert row["E"] == [1, 2] and row["skipped_E"] == [4, 8, 16, 32]
        p, t = _cell(ds, row["model"], row["size"], row["budget"])
        e1 = np.mean([np_brier(p[q][:2], t[q])[1] for q in range(len(t))])
        e2 = np.mean([np_brier(p[q].reshape(2, 2, -1).mean(1), t[q])[1] for q in range(len(t))])
        assert row["variance"] == pytest.approx([e1, e2], rel=1e-7, abs=1e-12)


def test_fig08_probability_accuracy_and_table1_counts(built):
    _, data, cubes, _ = built
    ds = cubes["gpqa"]
    panel = data["fig08"]["data"]["panels"]["gpqa_frontier"]
    assert panel["format"] == "probabilities"
    for a in panel["accuracy_vs_budget"]:
        for b, acc in zip(a["budgets"], a["accuracy"], strict=True):
            p, t = _cell(ds, a["model"], a["size"], b)
            assert acc == pytest.approx(np.mean([p[q, :, t[q]].mean() for q in range(len(t))]))
    rows = data["table01"]["data"]["rows"]
    assert len(rows) == 4
    for r in rows:
        fe = ds["format_error"].sel(model=r["model"], size=r["size"], budget=r["budget"]).values
        assert (r["count"], r["total"]) == (int(fe.sum()), fe.size)


def test_scaling_groups_match_numpy(built):
    """Figs. 4a / 13 / 14 on the MMLU cube: groups by the larger "size"'s mean length."""
    _, data, cubes, _ = built
    ds = cubes["mmlu"]
    (t4,) = data["fig04a"]["data"]["tables"]
    assert t4["sizes"] == ["270M", "270M-T0.5"] and t4["reference"] == "270M-T0.5" and t4["budget"] == "4"
    L = ds["output_tokens"].sel(model="gemma3", size="270M-T0.5", budget="4").mean("draw").values
    groups = _buckets(L, 5)
    assert t4["group_size"] == [len(g) for g in groups]
    for si, s in enumerate(t4["sizes"]):
        p, t = _cell(ds, "gemma3", s, "4")
        dec = [np_kl(p[q], t[q]) for q in range(len(t))]
        for gi, idx in enumerate(groups):
            got = t4["kl"]["incoherence"][gi][si]
            if len(idx) == 0:
                assert got is None
                continue
            err = sum(dec[q][2] for q in idx)
            want = sum(dec[q][1] for q in idx) / err if err > 0 else None
            assert (got is None and want is None) or got == pytest.approx(want, rel=1e-7, abs=1e-12)
            assert t4["kl"]["bias"][gi][si] == pytest.approx(np.mean([dec[q][0] for q in idx]), rel=1e-7)
    (t13,) = data["fig13"]["data"]["tables"][1:] or data["fig13"]["data"]["tables"]
    assert t13["groups"] == t4["groups"]
    panel = next(p for p in data["fig14"]["data"]["panels"] if p["cube"] == "mmlu_qwen3")
    c = panel["cells"]
    if panel["fit"] is not None:
        X = np.column_stack([np.ones(len(c["length"])), np.log(c["length"]), np.log(c["params"])])
        coef = np.linalg.lstsq(X, np.asarray(c["incoherence"]), rcond=None)[0]
        assert [panel["fit"]["intercept"], panel["fit"]["length_coef"], panel["fit"]["size_coef"]] == pytest.approx(coef)


def test_fig18_fig20_fig21_fig22_match_python(built):
    _, data, cubes, _ = built
    ds = cubes["gpqa"]
    rx = re.compile(r"\bWait\b")
    for ln in data["fig18"]["data"]["panels"]["gpqa_qwen3"]:
        c = ds.sel(model=ln["model"], size=ln["size"], budget=ln["budget"])
        cnt = np.vectorize(lambda s: len(rx.findall(s)))(c["reasoning_text"].values.astype(str))
        dens = cnt.sum(1) / c["reasoning_tokens"].values.sum(1)
        assert sum(ln["n_questions"]) == np.isfinite(dens).sum()
    answers = ds["outcome"].argmax("option").where(ds["format_error"] == 0, -1)
    lab = [str(v).split(" level")[0] for v in ds["difficulty"].values]
    for p in data["fig20"]["data"]["panels"]:
        a = answers.sel(model=p["model"], size=p["size"], budget=p["budget"]).values
        flags = [len({x for x in row if x >= 0}) > 1 for row in a if (row >= 0).sum() >= 2]
        keep = [q for q in range(a.shape[0]) if (a[q] >= 0).sum() >= 2]
        assert p["shares"]["all levels"]["all"] == pytest.approx(100 * np.mean(flags) if flags else None)
        for lv in {lab[q] for q in keep}:
            f = [len({x for x in a[q] if x >= 0}) > 1 for q in keep if lab[q] == lv]
            assert p["shares"][lv]["all"] == pytest.approx(100 * np.mean(f))
    for fam, ref in (("kl", np_kl), ("brier", np_brier)):
        for row in data["fig21"]["data"][fam]:
            pp, t = _cell(ds, row["model"], row["size"], row["budget"])
            assert row["bias_full"] == pytest.approx(np.mean([ref(pp[q], t[q])[0] for q in range(len(t))]), rel=1e-7)
    runs = [r for r in data["fig22"]["data"]["runs"] if r["cube"] == "gpqa_frontier"]
    assert len(runs) == 4
    for r in runs:
        L = ds["output_tokens"].sel(model=r["model"], size=r["size"], budget=r["budget"]).mean("draw").values
        for q, lv in enumerate(lab):
            assert r["mean_length_by_label"][lv.replace("-level", "")] == pytest.approx(L[q])  # one question per label
