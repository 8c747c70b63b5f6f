"""The cube schema module: validation finds every problem at once, require names the fix."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from hotmess.core import schema


def mc_cube(n_q: int = 3, n_d: int = 4, n_o: int = 4) -> xr.Dataset:
    """A valid multiple-choice cube built by hand from the schema's table (not from the engine)."""
    dims = ("model", "size", "budget", "question", "draw")
    shape = (1, 1, 2, n_q, n_d)
    rng = np.random.default_rng(0)
    onehot = np.eye(n_o)[rng.integers(0, n_o, size=shape)]
    ds = xr.Dataset(
        {
            "outcome": (dims + ("option",), onehot),
            "reasoning_tokens": (dims, rng.integers(0, 50, size=shape).astype(float)),
            "output_tokens": (dims, rng.integers(50, 90, size=shape).astype(float)),
            "finish_reason": (dims, np.zeros(shape)),
            "format_error": (dims, np.zeros(shape)),
            "seed": (dims, rng.integers(0, 2**31, size=shape).astype(float)),
            "text": (dims, np.full(shape, "Answer: A", dtype=object)),
        },
        coords={
            "model": ["m"], "size": ["s"], "budget": ["16", "64"],
            "question": [f"q{i}" for i in range(n_q)], "draw": np.arange(n_d),
            "option": list("ABCD")[:n_o],
            "params": (("model", "size"), [[1e8]]),
            "budget_tokens": ("budget", [16.0, 64.0]),
            "target": ("question", np.arange(n_q) % n_o),
            "subject": ("question", np.array(["x"] * n_q, dtype=object)),
        },
    )
    ds.attrs = schema.stamp({}, "probabilities")
    return ds


def test_valid_cube_has_no_problems():
    assert schema.validate(mc_cube()) == []
    assert schema.kind_of(mc_cube()) == "probabilities"
    assert schema.version_of(mc_cube()) == schema.SCHEMA_VERSION


def test_every_problem_is_listed_at_once():
    ds = mc_cube().drop_vars("target")
    ds["reasoning_tokens"] = ds["reasoning_tokens"].transpose("draw", ...)
    out = ds["outcome"].values.copy()
    out[0, 0, 0, 0, 0] = [0.5, 0.5, 0.5, 0.0]  # sums to 1.5
    ds["outcome"] = (ds["outcome"].dims, out)
    ds["output_tokens"] = ds["output_tokens"] * -1
    problems = schema.validate(ds)
    assert any(p.startswith("target: missing") for p in problems)
    assert any(p.startswith("reasoning_tokens: dims") for p in problems)
    assert any("1 draw(s) whose probabilities do not sum to 1" in p for p in problems)
    assert any(p.startswith("output_tokens: negative") for p in problems)
    assert len(problems) == 4
    with pytest.raises(schema.SchemaError) as err:
        schema.check(ds, source="results/x/cube.nc")
    assert "results/x/cube.nc" in str(err.value) and len(err.value.problems) == 4


def test_not_run_cells_are_nan_and_valid():
    ds = mc_cube()
    ds["outcome"][:, :, 1] = np.nan  # the 64-token budget was not run
    assert schema.validate(ds) == []


def test_wrong_kind_and_unknown_kind():
    assert schema.validate(mc_cube(), kind="tests") == ["cube is of kind 'probabilities', expected 'tests'"]
    assert "unknown cube kind" in schema.validate(mc_cube(), kind="bogus")[0]
    with pytest.raises(schema.SchemaError):
        schema.stamp({}, "bogus")


def test_require_names_experiment_variable_and_command():
    ds = mc_cube().drop_vars("reasoning_tokens")
    with pytest.raises(schema.MissingVariableError) as err:
        schema.require(ds, ["outcome", "reasoning_tokens"], experiment="gpqa_qwen3", needed_by="figure fig05")
    msg = str(err.value)
    assert "figure fig05" in msg and "['reasoning_tokens']" in msg and "'gpqa_qwen3'" in msg
    assert "hotmess run experiment=gpqa_qwen3" in msg
    assert schema.require(mc_cube(), ["outcome", "target"], experiment="e") is not None


def test_old_cubes_upgrade_and_newer_are_refused():
    old = mc_cube()
    old.attrs = {"outcome_kind": "probabilities"}  # a 0.1 cube: no schema_version
    assert schema.version_of(old) == 1
    up = schema.upgrade(old)
    assert up.attrs["schema_version"] == str(schema.SCHEMA_VERSION)
    assert up.attrs["schema_upgraded_from"] == "1"
    assert "schema_version" not in old.attrs  # in memory, a copy
    future = mc_cube()
    future.attrs["schema_version"] = str(schema.SCHEMA_VERSION + 1)
    with pytest.raises(schema.SchemaError, match="newer than this hotmess reads"):
        schema.upgrade(future)
    assert any("not readable" in p for p in schema.validate(future))


def test_kind_inferred_from_dims_without_attribute():
    ds = mc_cube()
    ds.attrs = {}
    assert schema.kind_of(ds) == "probabilities"
    pts = xr.Dataset({"outcome": (("model", "size", "step", "question", "draw", "coordinate"),
                                  np.zeros((1, 1, 3, 1, 2, 2)))},
                     coords={"model": ["t"], "size": ["5K"], "step": [0, 1, 2], "question": ["quadratic"],
                             "draw": [0, 1], "coordinate": [0, 1],
                             "params": (("model", "size"), [[5e3]])})
    assert schema.kind_of(pts) == "point"
    assert schema.validate(pts) == []
    assert schema.validate(pts.drop_vars("outcome")) == [
        "outcome: missing (required for kind 'point': scored outcome of the draw: probability vector, "
        "test pass/fail, embedding; NaN where not run)"]


def test_describe_lists_every_variable():
    table = schema.describe()
    for name in schema.VARIABLES:
        assert f"`{name}`" in table
