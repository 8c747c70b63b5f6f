"""The example plugin's producer and figure (tests/example_plugin), in this process.

A third party's producer (``answers_csv``: a CSV of answers from another harness -> a cube)
registered through ``register_producers`` runs through the engine, passes the conformance
kit, resumes, refuses a changed file and unknown options; its figure, registered through
``register_figures``, gives the Brier incoherence computed here by hand with numpy."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from hotmess.core import plugins, schema
from hotmess.core.cube import open_cube
from hotmess.core.engine import run_experiment
from hotmess.core.experiment import ConfigError, parse_experiment
from hotmess.core.options import OptionsError
from hotmess.testing import check_producer

EXAMPLE = Path(__file__).resolve().parent / "example_plugin" / "src"

# model, size, question, draw, answer, target ("" = unparseable)
ROWS = [
    ("calc", "careful", "q0", 0, "A", "A"), ("calc", "careful", "q0", 1, "A", "A"),
    ("calc", "careful", "q0", 2, "B", "A"), ("calc", "careful", "q1", 0, "C", "C"),
    ("calc", "careful", "q1", 1, "C", "C"), ("calc", "careful", "q1", 2, "C", "C"),
    ("calc", "sloppy", "q0", 0, "B", "A"), ("calc", "sloppy", "q0", 1, "D", "A"),
    ("calc", "sloppy", "q0", 2, "", "A"), ("calc", "sloppy", "q1", 0, "C", "C"),
    ("calc", "sloppy", "q1", 1, "A", "C"), ("calc", "sloppy", "q1", 2, "B", "C"),
]


@pytest.fixture
def example_plugin():
    sys.path.insert(0, str(EXAMPLE))
    import hotmess_example

    plugins.register_plugin(hotmess_example, name="example_inprocess")
    try:
        yield hotmess_example
    finally:
        plugins.unregister_plugin("example_inprocess")
        sys.path.remove(str(EXAMPLE))


def _csv(path: Path, rows=ROWS) -> Path:
    path.write_text("model,size,question,draw,answer,target\n"
                    + "".join(f"{m},{s},{q},{d},{a},{t}\n" for m, s, q, d, a, t in rows))
    return path


def _cfg(tmp_path, csv, **options):
    return OmegaConf.create({"experiment": "answers_demo", "out_dir": str(tmp_path / "results"),
                             "producer": {"name": "answers_csv", "csv": str(csv), **options}})


def _by_hand(rows, size):
    """One-hot (uniform if unparseable) vectors -> Brier error/variance per question."""
    labels = "ABCD"
    var = err = 0.0
    for q in ("q0", "q1"):
        vecs = [np.eye(4)[labels.index(a)] if a else np.full(4, 0.25)
                for _, s, qq, _, a, _ in rows if s == size and qq == q]
        y = np.eye(4)[labels.index(next(t for _, s, qq, _, _, t in rows if qq == q))]
        mean = np.mean(vecs, axis=0)
        var += np.mean([np.sum((v - mean) ** 2) for v in vecs])
        err += np.mean([np.sum((v - y) ** 2) for v in vecs])
    return var / err


def test_producer_through_the_engine_resumes_and_refuses(example_plugin, tmp_path):
    csv = _csv(tmp_path / "answers.csv")
    path = run_experiment(_cfg(tmp_path, csv))
    ds = open_cube(path)
    assert schema.validate(ds, "probabilities") == []
    assert ds.attrs["schema_version"] == str(schema.SCHEMA_VERSION)
    assert dict(ds["outcome"].sizes) == {"model": 1, "size": 2, "budget": 1, "question": 2, "draw": 3, "option": 4}
    sloppy = ds.outcome.sel(model="calc", size="sloppy", budget="none")
    np.testing.assert_array_equal(sloppy.sel(question="q0").values, [[0, 1, 0, 0], [0, 0, 0, 1], [0.25] * 4])
    assert ds.format_error.sel(size="sloppy", question="q0").values.ravel().tolist() == [0, 0, 1]
    assert ds.target.values.tolist() == [0, 2]
    # a rerun of the same command reuses the part files
    part = tmp_path / "results" / "answers_demo" / "parts" / "calc__careful.nc"
    mtime = part.stat().st_mtime_ns
    run_experiment(_cfg(tmp_path, csv))
    assert part.stat().st_mtime_ns == mtime
    # the same folder with another file: refused by the one manifest, naming the setting
    _csv(csv, ROWS[:-1] + [("calc", "sloppy", "q1", 2, "C", "C")])
    with pytest.raises(ConfigError, match="csv_sha256"):
        run_experiment(_cfg(tmp_path, csv))
    with pytest.raises(OptionsError, match=r"unknown option\(s\) 'n_option' .*valid options: \['csv', 'n_options'\]"):
        run_experiment(_cfg(tmp_path, csv, n_option=4))


def test_producer_passes_the_conformance_kit(example_plugin, tmp_path):
    csv = _csv(tmp_path / "answers.csv")
    exp = parse_experiment(_cfg(tmp_path, csv))
    ds = check_producer(plugins.create("producers", "answers_csv", csv=str(csv)), exp)
    assert ds.sizes["size"] == 2


def test_figure_registered_by_the_plugin(example_plugin, tmp_path):
    reg = plugins.registrations("figures")["example_incoherence"]
    assert reg.meta["cubes"] == ("arith_demo",) and reg.plugin == "example_inprocess"
    cube = open_cube(run_experiment(_cfg(tmp_path, _csv(tmp_path / "answers.csv"))))
    fig, numbers = reg.factory({"arith_demo": cube})
    for size in ("careful", "sloppy"):
        assert numbers["incoherence"][size]["none"] == pytest.approx(_by_hand(ROWS, size), rel=1e-12)
    assert len(fig.axes[0].lines) == 2
    with pytest.raises(schema.MissingVariableError, match="'target'.*arith_demo"):
        reg.factory({"arith_demo": cube.drop_vars("target")})
