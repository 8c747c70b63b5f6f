"""Shared check of the importers' tests: ``hotmess report --json`` against hotmess.core.metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner

from hotmess.cli import main
from hotmess.core import metrics
from hotmess.core.cube import open_cube


def _expected(cube: xr.Dataset) -> dict[str, xr.DataArray]:
    """The report's numbers per cell, straight from hotmess.core.metrics."""
    kl = metrics.kl_decomposition(cube.outcome, cube.target)
    br = metrics.brier_decomposition(cube.outcome, cube.target)
    zo = metrics.zero_one_decomposition(cube.outcome, cube.target)
    ran = cube.outcome.notnull().any("option")
    return {
        "accuracy": metrics.accuracy(cube.outcome, cube.target).mean("question"),
        "format_error_rate": metrics.format_error_rate(cube.format_error.where(ran)),
        "kl_bias": kl.bias.mean("question"), "kl_variance": kl.variance.mean("question"),
        "kl_incoherence": metrics.incoherence(kl.variance, kl.error),
        "brier_bias": br.bias.mean("question"), "brier_variance": br.variance.mean("question"),
        "brier_incoherence": metrics.incoherence(br.variance, br.error),
        "zero_one_bias": zo.bias.mean("question"), "zero_one_variance": zo.variance.mean("question"),
    }


def check_report_against_metrics(cube_path: Path, n_boot: int = 200) -> dict:
    """Run ``hotmess report --json`` and compare every number with hotmess.core.metrics;
    also used by the lm-eval and Inspect tests."""
    res = CliRunner().invoke(main, ["report", str(cube_path), "--json", "--n-boot", str(n_boot), "--seed", "3"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    cube = open_cube(cube_path)
    want = _expected(cube)
    assert rep["bootstrap"] == {"n_boot": n_boot, "ci": 0.95, "seed": 3,
                                "method": "percentile bootstrap over questions (paired across metrics)"}
    assert rep["rows"]
    for row in rep["rows"]:
        cell = {d: row[d] for d in ("model", "size", "budget")}
        ran = cube.outcome.sel(cell).notnull().any("option")
        assert row["questions"] == int(ran.any("draw").sum())
        assert row["draws"] == int(ran.sum())
        assert row["draws_per_question_min"] == int(ran.sum("draw").where(ran.any("draw")).min())
        assert bool(row["warnings"]) == (row["draws_per_question_min"] < 30)
        for key, value in want.items():
            m = row["metrics"][key]
            expected = float(value.sel(cell))
            assert m["value"] == pytest.approx(expected, abs=1e-12), key
            assert m["lower"] - 1e-12 <= m["value"] <= m["upper"] + 1e-12, key
    return rep
