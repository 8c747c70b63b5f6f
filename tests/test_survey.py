"""Survey import: CSV validation (file and line in every error), the coherence inversion
N + 1 - rank, hand-computed means and standard errors, the runs-itself task and its figures."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from hotmess.plugins.survey.importer import EXAMPLE_CSV, SurveyError, import_survey, read_survey_csv

HAND = """\
# hand-made test survey
entity,group,rater,attribute,rank
A,AI,I1,intelligence,3
B,biological,I1,intelligence,1
C,organisation,I1,intelligence,2
A,AI,I2,intelligence,2
B,biological,I2,intelligence,1
C,organisation,I2,intelligence,3
A,AI,I3,intelligence,3
B,biological,I3,intelligence,2
C,organisation,I3,intelligence,1

A,AI,C1,coherence,1
B,biological,C1,coherence,3
C,organisation,C1,coherence,2
A,AI,C2,Coherence,2
B,biological,C2,coherence,3
C,organisation,C2,coherence,1
"""


def write(tmp_path: Path, text: str, name: str = "s.csv") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_means_and_sems_hand_computed(tmp_path):
    ds = import_survey(write(tmp_path, HAND))
    assert ds.attrs["n_entities"] == 3 and ds.attrs["illustrative"] == "no"
    assert list(ds["measure"].values) == ["intelligence", "incoherence"]
    assert list(ds["group"].values) == ["AI", "biological", "organisation"]
    # incoherence = 4 - coherence: C1 -> A 3, B 1, C 2; C2 -> A 2, B 1, C 3
    np.testing.assert_array_equal(ds["rank"].sel(measure="incoherence", rater="C1").values, [3, 1, 2])
    np.testing.assert_array_equal(ds["rank_as_given"].sel(measure="incoherence", rater="C2").values, [2, 3, 1])
    assert np.isnan(ds["rank"].sel(measure="incoherence", rater="I1")).all()
    # intelligence: A (3,2,3), B (1,1,2), C (2,3,1)
    np.testing.assert_allclose(ds["mean"].sel(measure="intelligence").values, [8 / 3, 4 / 3, 2])
    # SEM = sd(ddof=1)/sqrt(n): A, B: sqrt(1/3)/sqrt(3) = 1/3; C: 1/sqrt(3)
    np.testing.assert_allclose(ds["sem"].sel(measure="intelligence").values, [1 / 3, 1 / 3, 1 / math.sqrt(3)])
    # incoherence: A (3,2) B (1,1) C (2,3)
    np.testing.assert_allclose(ds["mean"].sel(measure="incoherence").values, [2.5, 1, 2.5])
    np.testing.assert_allclose(ds["sem"].sel(measure="incoherence").values, [0.5, 0, 0.5])
    np.testing.assert_array_equal(ds["n_raters"].values, [[3, 3, 3], [2, 2, 2]])
    assert ds["attribute"].sel(measure="incoherence", rater="C2").item() == "coherence"


def test_incoherence_given_directly_is_not_inverted_and_single_rater_sem_is_nan(tmp_path):
    text = "entity,group,rater,attribute,rank\nA,AI,R,incoherence,1\nB,AI,R,incoherence,2\nA,AI,S,intelligence,2\nB,AI,S,intelligence,1\n"
    ds = import_survey(write(tmp_path, text))
    np.testing.assert_array_equal(ds["mean"].sel(measure="incoherence").values, [1, 2])
    assert np.isnan(ds["sem"]).all()  # one rater per measure


@pytest.mark.parametrize(
    "row, lineno, pattern",
    [
        (",AI,R9,intelligence,1", 6, "missing entity"),
        ("A,AI,R9,intelligence,4", 6, r"rank 4 .*out of range \[1, 3\]"),
        ("A,AI,R9,intelligence,0", 6, "out of range"),
        ("A,AI,R9,intelligence,two", 6, "not a number"),
        ("A,AI,R9,wisdom,1", 6, "unknown attribute"),
        ("A,AI,R1,intelligence,2", 6, "duplicate rank: rater 'R1' already ranked entity 'A' on intelligence at line 2"),
        ("A,biological,R9,intelligence,2", 6, "group 'biological' here but 'AI' at line 2"),
        ("A,AI,R9,intelligence", 6, "expected 5 fields, found 4"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, lineno, pattern):
    good = "entity,group,rater,attribute,rank\nA,AI,R1,intelligence,1\nB,AI,R1,intelligence,2\nC,AI,R1,intelligence,3\n# a comment\n"
    p = write(tmp_path, good + row + "\n", name="bad_survey.csv")
    with pytest.raises(SurveyError) as err:
        read_survey_csv(p)
    msg = str(err.value)
    assert msg.startswith(f"{p}:{lineno}: "), msg
    assert re.search(pattern, msg), msg


def test_bad_header_and_missing_file(tmp_path):
    with pytest.raises(SurveyError, match=r"h\.csv:1: header .*missing \['rank'\]"):
        read_survey_csv(write(tmp_path, "entity,group,rater,attribute\nA,AI,R,intelligence\n", "h.csv"))
    with pytest.raises(SurveyError, match="no data rows"):
        read_survey_csv(write(tmp_path, "entity,group,rater,attribute,rank\n", "e.csv"))
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_survey_csv(tmp_path / "nope.csv")


def test_example_is_labelled_illustrative_and_consistent():
    rows, comments = read_survey_csv(EXAMPLE_CSV)
    assert "ILLUSTRATIVE" in comments[0] and "NOT the paper" in comments[0]
    ds = import_survey(EXAMPLE_CSV)
    assert ds.attrs["illustrative"] == "yes"
    n = ds.attrs["n_entities"]
    # every rater ranked every entity once on one measure: the ranks are a permutation of 1..N,
    # so the mean of the per-entity means is (N + 1) / 2 on both measures (inversion included)
    np.testing.assert_allclose(ds["mean"].mean("entity").values, [(n + 1) / 2] * 2)
    assert set(ds["group"].values) == {"AI", "biological", "organisation"}


def test_producer_runs_through_the_engine_and_figures(tmp_path):
    from omegaconf import OmegaConf

    from hotmess.core import schema
    from hotmess.core.cube import open_cube
    from hotmess.core.engine import run_experiment
    from hotmess.paper.survey_figs import fig04b, fig27

    csv = str(write(tmp_path, HAND))
    cfg = OmegaConf.create({"experiment": "survey", "out_dir": str(tmp_path / "results"),
                            "producer": {"name": "survey", "csv": csv}})
    path = run_experiment(cfg)
    assert path == tmp_path / "results" / "survey" / "cube.nc"
    ds = open_cube(path)
    assert schema.validate(ds, "survey") == []
    assert ds.attrs["schema_version"] == str(schema.SCHEMA_VERSION) and ds.attrs["outcome_kind"] == "survey"
    assert list(ds["entity"].values) == ["A", "B", "C"]
    np.testing.assert_allclose(ds["mean"].sel(measure="intelligence").values, [8 / 3, 4 / 3, 2])
    assert "config" in ds.attrs and ds.attrs["source_csv"] == "s.csv"
    if shutil.which("ncdump"):  # readable with no project code
        out = subprocess.run(["ncdump", "-h", str(path)], capture_output=True, text=True, check=True).stdout
        assert "sem(measure, entity)" in out

    fig, numbers = fig04b({"survey": ds})
    a = numbers["entities"]["A"]
    assert (a["group"], a["intelligence_mean"], a["incoherence_mean"], a["incoherence_sem"]) == ("AI", 8 / 3, 2.5, 0.5)
    np.testing.assert_allclose(a["intelligence_sem"], 1 / 3)
    json.dumps(numbers)
    fig, numbers = fig27({"survey": ds})
    assert list(numbers["groups"]) == ["biological", "AI", "organisation"]
    assert list(numbers["groups"]["biological"]) == ["B"]
    assert len(fig.axes) == 3

    # the default (no csv): the packaged ILLUSTRATIVE example, and the title says so
    path = run_experiment(OmegaConf.create({"experiment": "survey", "out_dir": str(tmp_path / "ex"),
                                            "producer": {"name": "survey"}}))
    fig, numbers = fig04b({"survey": open_cube(path)})
    assert numbers["illustrative"] == "yes" and "ILLUSTRATIVE" in fig.axes[0].get_title()
