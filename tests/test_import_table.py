"""``hotmess import table`` and ``hotmess report`` on long tables written here.

Expected values are worked out by hand from the rows (one-hot / uniform vectors, counts), the
report's numbers are recomputed with :mod:`hotmess.core.metrics` directly, and every
bad-input case of the format must give one line naming the file and line while leaving the
cube on disk untouched.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from report_check import check_report_against_metrics

from hotmess.cli import main
from hotmess.core import metrics, schema
from hotmess.core.cube import file_hash, open_cube
from hotmess.plugins.importers.common import ImportFailure
from hotmess.plugins.importers.table import import_table

pd = pytest.importorskip("pandas")

HEADER = ("model,size,params,budget,budget_tokens,subject,question,draw,target,answer,n_options,"
          "reasoning_tokens,output_tokens,seed,context,text")
ROWS = [
    # model, size, params, budget, btok, subject, question, draw, target, answer, n_opt, rtok, otok, seed, ctx, text
    "gemma,270M,268098176,short,16,algebra,q1,0,B,B,4,10,12,101,0,the answer is B",
    "gemma,270M,268098176,short,16,algebra,q1,1,B,2,4,11,13,102,1,C",
    "gemma,270M,268098176,short,16,algebra,q1,2,B,,4,12,14,103,0,no idea",
    "gemma,270M,268098176,short,16,algebra,q2,0,A,A,3,5,6,104,0,A",
    "gemma,270M,268098176,short,16,algebra,q2,1,A,D,3,5,6,105,1,D",
    "gemma,270M,268098176,short,16,algebra,q2,2,A,0,3,5,6,106,0,A",
    "gemma,1B,1000000000,short,16,history,q1,0,B,B,4,,,,0,",
    "gemma,1B,1000000000,short,16,history,q1,1,B,B,4,,,,1,",
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture()
def csv_table(tmp_path):
    return _write(tmp_path / "draws.csv", HEADER + "\n" + "\n".join(ROWS) + "\n")


def test_answer_table_every_optional_column(csv_table):
    ds = import_table([csv_table])
    assert schema.validate(ds, "probabilities") == []
    assert dict(ds.sizes) == {"model": 1, "size": 2, "budget": 1, "question": 2, "draw": 3, "option": 4}
    assert list(ds["size"].values) == ["1B", "270M"]  # natural order of the labels
    cell = dict(model="gemma", size="270M", budget="short")
    out = ds.outcome.sel(cell)
    np.testing.assert_array_equal(out.sel(question="q1").values,
                                  [[0, 1, 0, 0], [0, 0, 1, 0], [0.25] * 4])
    # q2 has 3 options: D is out of range -> uniform over A..C, option D padded with NaN
    np.testing.assert_allclose(out.sel(question="q2").values,
                               [[1, 0, 0, np.nan], [1 / 3, 1 / 3, 1 / 3, np.nan], [1, 0, 0, np.nan]])
    np.testing.assert_array_equal(ds.format_error.sel(cell).values, [[0, 0, 1], [0, 1, 0]])
    assert list(ds.parse_rule.sel(cell).sel(question="q2").values) == ["table_answer", "out_of_range", "table_answer"]
    assert list(ds.target.values) == [1, 0] and list(ds.n_options.values) == [4, 3]
    assert list(ds.subject.values) == ["algebra", "algebra"]  # from the first row of each question
    assert float(ds.params.sel(model="gemma", size="1B")) == 1e9
    assert float(ds.budget_tokens.sel(budget="short")) == 16
    np.testing.assert_array_equal(ds.reasoning_tokens.sel(cell).sel(question="q1").values, [10, 11, 12])
    np.testing.assert_array_equal(ds.output_tokens.sel(cell).sel(question="q1").values, [12, 13, 14])
    np.testing.assert_array_equal(ds.seed.sel(cell).sel(question="q2").values, [104, 105, 106])
    np.testing.assert_array_equal(ds.context.values, [0, 1, 0])
    assert ds.text.sel(cell).sel(question="q1", draw=0).item() == "the answer is B"
    # the 1B cell ran 2 draws of q1 only: the rest is NaN, never zero
    one_b = ds.outcome.sel(model="gemma", size="1B", budget="short")
    assert one_b.sel(question="q1", draw=2).isnull().all() and one_b.sel(question="q2").isnull().all()
    assert json.loads(ds.attrs["source_sha256"]) == {"draws.csv": file_hash(csv_table)}
    assert ds.attrs["source_tool"] == "table" and ds.attrs["outcome_kind"] == "probabilities"


def test_probability_columns_in_jsonl_and_parquet(tmp_path):
    rows = [
        {"model": "m", "question": "x", "draw": 0, "target": "C", "p_A": 0.2, "p_B": 0.3, "p_C": 0.5},
        {"model": "m", "question": "x", "draw": 1, "target": "C", "p_A": 0.6, "p_B": 0.4, "p_C": 0.0},
        {"model": "m", "question": "x", "draw": 2, "target": "C", "p_A": None, "p_B": None, "p_C": None},
        {"model": "m", "question": "y", "draw": 0, "target": "1", "p_A": 0.5, "p_B": 0.5, "p_C": None},
    ]
    jl = _write(tmp_path / "p.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n")
    pq = tmp_path / "p.parquet"
    pd.DataFrame(rows).to_parquet(pq)
    a, b = import_table([jl]), import_table([pq])
    for ds in (a, b):
        out = ds.outcome.isel(model=0, size=0, budget=0)
        np.testing.assert_allclose(out.sel(question="x").values,
                                   [[0.2, 0.3, 0.5], [0.6, 0.4, 0.0], [1 / 3, 1 / 3, 1 / 3]])
        np.testing.assert_allclose(out.sel(question="y", draw=0).values, [0.5, 0.5, np.nan])
        assert list(ds.format_error.isel(model=0, size=0, budget=0).sel(question="x").values) == [0, 0, 1]
        assert list(ds.answer.isel(model=0, size=0, budget=0).sel(question="x").values) == ["C", "A", ""]
        assert list(ds.target.values) == [2, 1]
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


BAD = {
    "not_a_table.csv": (b"\x89HDF\r\n\x1a\n\x00\x00\x00\xff\xfe binary", "not a UTF-8 text"),
    "not_parquet.parquet": (b"model,question,draw,target,answer\nm,q,0,A,A\n", "not a readable Parquet file"),
    "unknown.txt": (b"model,question\n", "unknown table format '.txt'"),
    "empty.csv": (b"", "empty file"),
    "targets.csv": (b"model,question,draw,target,answer\nm,z1,0,A,A\nm,z1,1,B,A\n",
                    "targets.csv:3 (question 'z1', draw 1): question 'z1' has target B but"),
    "options.csv": (b"model,question,draw,target,answer,n_options\nm,z1,0,A,A,4\nm,z1,1,A,B,3\n",
                    "options.csv:3 (question 'z1', draw 1): question 'z1' has 3 options but"),
    "options.jsonl": (b'{"model":"m","question":"q","draw":0,"target":"A","p_A":0.5,"p_B":0.5,"p_C":0}\n'
                      b'{"model":"m","question":"q","draw":1,"target":"A","p_A":0.5,"p_B":0.5,"p_C":null}\n',
                      "options.jsonl:2 (question 'q', draw 1): question 'q' has 2 options but"),
    "truncated.jsonl": (b'{"model":"m","question":"q","draw":0,"target":"A","answer":"A"}\n'
                        b'{"model":"m","question":"q","draw":1,"target":"A","answer":"A"}\n'
                        b'{"model":"m","question":"q","dra', "truncated.jsonl:3: not a JSON object"),
    "duplicate.csv": (b"model,question,draw,target,answer\nm,q,0,A,A\nm,q,0,A,B\n",
                      "duplicate.csv:3 (question 'q', draw 0): draw 0 of question 'q' in cell m/-/none is also given at"),
    "typo.csv": (b"model,question,draw,target,answer,sead\nm,q,0,A,A,1\n", "unknown column(s) ['sead']"),
    "both.csv": (b"model,question,draw,target,answer,p_A,p_B\nm,q,0,A,A,1,0\n", "not both"),
    "sums.csv": (b"model,question,draw,target,p_A,p_B\nm,q,0,A,0.7,0.7\n",
                 "sums.csv:2 (question 'q', draw 0): probabilities [0.7, 0.7] do not form a distribution"),
    "badtarget.csv": (b"model,question,draw,target,answer\nm,q,0,maybe,A\n",
                      "badtarget.csv:2 (question 'q', draw 0): target 'maybe' is neither a letter nor an index"),
    "missing.csv": (b"model,question,target,answer\nm,q,A,A\n", "missing column(s) ['draw']"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_tables_give_one_line_and_write_nothing(tmp_path, csv_table, name):
    content, expected = BAD[name]
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(ImportFailure) as err:
        import_table([bad])
    assert expected in str(err.value) and str(bad) in str(err.value) and "\n" not in str(err.value)
    # through the CLI, next to an existing cube: one line on stderr, the cube unchanged
    cube = tmp_path / "cube.nc"
    runner = CliRunner()
    assert runner.invoke(main, ["import", "table", str(csv_table), "-o", str(cube)]).exit_code == 0
    before = cube.read_bytes()
    res = runner.invoke(main, ["import", "table", str(csv_table), str(bad), "-o", str(cube)])
    assert res.exit_code == 1
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0]
    assert cube.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cube.nc.")]  # no temp file left


def test_same_files_twice_give_the_same_cube_and_more_files_add_cells(tmp_path, csv_table):
    runner = CliRunner()
    cube = tmp_path / "out" / "cube.nc"
    first_half = _write(tmp_path / "a.csv", HEADER + "\n" + "\n".join(ROWS[:6]) + "\n")
    second_half = _write(tmp_path / "b.csv", HEADER + "\n" + "\n".join(ROWS[6:]) + "\n")
    for _ in range(2):
        res = runner.invoke(main, ["import", "table", str(first_half), "-o", str(cube)])
        assert res.exit_code == 0, res.output
        assert "size=1" in res.output
    once = open_cube(cube)
    again = import_table([first_half])
    xr.testing.assert_identical(once, again.pipe(lambda d: open_cube(_save(d, tmp_path / "x.nc"))))
    res = runner.invoke(main, ["import", "table", str(second_half), "-o", str(cube)])
    assert res.exit_code == 0, res.output
    merged = open_cube(cube)
    fresh = open_cube(_save(import_table([first_half, second_half]), tmp_path / "fresh.nc"))
    xr.testing.assert_equal(merged, fresh)  # data and coords as a fresh import of both
    assert json.loads(merged.attrs["source_files"]) == ["a.csv", "b.csv"]
    assert set(json.loads(merged.attrs["source_sha256"])) == {"a.csv", "b.csv"}


def _save(ds, path):
    from hotmess.core.cube import save_cube

    return save_cube(ds, path)


def test_report_equals_metrics_and_states_the_bootstrap(tmp_path, csv_table):
    cube = tmp_path / "cube.nc"
    assert CliRunner().invoke(main, ["import", "table", str(csv_table), "-o", str(cube)]).exit_code == 0
    rep = check_report_against_metrics(cube)
    small = next(r for r in rep["rows"] if r["size"] == "270M")
    # by hand: q1 draws B, C, uniform over 4 options (correct B) and q2 draws A, uniform over 3,
    # A (correct A); a uniform (format-error) draw is right with probability 1/C (fractional ties)
    assert small["metrics"]["accuracy"]["value"] == pytest.approx(((1 + 0 + 1 / 4) / 3 + (1 + 1 / 3 + 1) / 3) / 2)
    assert small["metrics"]["format_error_rate"]["value"] == pytest.approx(2 / 6)
    assert (small["questions"], small["draws"], small["draws_per_question_min"]) == (2, 6, 3)
    # the table: title, every metric row, the interval line and the warning
    res = CliRunner().invoke(main, ["report", str(cube), "--n-boot", "100"], terminal_width=200)
    assert res.exit_code == 0, res.output
    for text in ("KL incoherence", "Brier incoherence", "0/1 variance", "format-error rate",
                 "95% percentile bootstrap over questions, 100 replicates, seed 0", "draws / question",
                 "< 30"):
        assert text in res.output, text
    # pooled over sizes: one row, questions counted per (size, question)
    res = CliRunner().invoke(main, ["report", str(cube), "--json", "--by", "model", "--n-boot", "50"])
    pooled = json.loads(res.output)
    assert pooled["pooled"] == ["size", "budget"] and len(pooled["rows"]) == 1
    assert pooled["rows"][0]["questions"] == 3 and pooled["rows"][0]["distinct_questions"] == 2
    ds = open_cube(cube)
    kl = metrics.kl_decomposition(ds.outcome, ds.target)
    assert pooled["rows"][0]["metrics"]["kl_incoherence"]["value"] == pytest.approx(
        float(kl.variance.sum()) / float(kl.error.sum()))


def test_report_refuses_bad_by_and_missing_cube(tmp_path, csv_table):
    cube = tmp_path / "cube.nc"
    CliRunner().invoke(main, ["import", "table", str(csv_table), "-o", str(cube)])
    res = CliRunner().invoke(main, ["report", str(cube), "--by", "modle"])
    assert res.exit_code == 1 and "--by takes model, size, budget; not modle" in res.output
    res = CliRunner().invoke(main, ["report", str(tmp_path / "nope.nc")])
    assert res.exit_code == 1 and "no cube at" in res.output


def test_registered_as_producers(tmp_path, csv_table):
    from hotmess.core import plugins

    regs = plugins.registrations("producers")
    assert {"import_lm_eval", "import_inspect", "import_table"} <= set(regs)
    prod = regs["import_table"].factory(paths=[str(csv_table)], out=str(tmp_path / "c.nc"))
    ds = prod.run()
    assert schema.validate(open_cube(tmp_path / "c.nc"), "probabilities") == []
    assert ds.sizes["question"] == 2


def test_report_without_a_format_error_flag_says_unknown_not_zero(tmp_path, csv_table):
    """A cube that records no format_error flag: the rate is unknown (null, shown as a dash),
    where 0.000 would claim that every answer was read."""
    from hotmess.core.cube import open_cube
    from hotmess.plugins.importers.report import report

    cube = tmp_path / "cube.nc"
    assert CliRunner().invoke(main, ["import", "table", str(csv_table), "-o", str(cube)]).exit_code == 0
    ds = open_cube(cube).drop_vars("format_error")
    rep = report(ds, by=("model", "size", "budget"), n_boot=20)
    assert all(r["metrics"]["format_error_rate"]["value"] is None for r in rep["rows"])
    # the other metrics are unchanged by the missing flag
    full = report(open_cube(cube), by=("model", "size", "budget"), n_boot=20)
    assert [r["metrics"]["accuracy"]["value"] for r in rep["rows"]] == [r["metrics"]["accuracy"]["value"] for r in full["rows"]]
