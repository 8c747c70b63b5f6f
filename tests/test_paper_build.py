"""``hotmess paper``: failures isolated per figure (empty, foreign, unreadable cubes, missing
variables, a builder that raises), exit codes, ``--only`` with an unknown name, settings from
figure options, ``--list``, figures from plugins, the claims table and the report page's
content (the page in a real browser: test_paper_real.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from paper_cubes import mc_cube, swe_cube, write

from hotmess.cli import main
from hotmess.core import plugins, schema
from hotmess.core.cube import provenance, save_cube
from hotmess.core.hookspecs import hookimpl
from hotmess.paper import build
from hotmess.plugins.survey.importer import EXAMPLE_CSV, import_survey

SWE_FIGS = {"fig02b", "fig03b", "fig17b", "fig25"}
SURVEY_FIGS = {"fig04b", "fig27"}


def survey(results: Path) -> Path:
    ds = import_survey(EXAMPLE_CSV)
    ds.attrs.update(provenance(None, experiment="survey"))
    schema.stamp(ds.attrs, "survey")
    return save_cube(ds, results / "survey" / "cube.nc")


def good_swe(results: Path) -> Path:
    rng = np.random.default_rng(0)
    passes = (rng.random((5, 4, 3)) < 0.6).astype(float)
    return write(swe_cube(passes, rng.integers(1, 9, size=(5, 4))), results, "swebench_probe")


def run(*args):
    res = CliRunner().invoke(main, ["paper", *map(str, args)])
    assert "Traceback" not in res.output, res.output
    return res


def lines_of(text: str, prefix: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        m = re.match(rf"{prefix}\s+(\S+)\s+(.*)$", line)
        if m:
            assert m.group(1) not in out, f"two lines for {m.group(1)}"
            out[m.group(1)] = m.group(2)
    return out


def test_bad_cubes_fail_their_figures_only(tmp_path):
    res_dir = tmp_path / "results"
    good_swe(res_dir)
    survey(res_dir)
    # empty: a multiple-choice cube in which no draw was run
    ds = mc_cube(np.zeros((3, 2), int), [0, 0, 0], np.full((3, 2), 5.0))
    ds["outcome"][:] = np.nan
    write(ds, res_dir, "mwe_cpu")
    # foreign: the survey cube copied into the open-ended MWE folder
    (res_dir / "mwe_open_cpu").mkdir()
    shutil.copy(res_dir / "survey" / "cube.nc", res_dir / "mwe_open_cpu" / "cube.nc")
    # unreadable: a truncated netCDF file
    (res_dir / "cpu_demo").mkdir()
    (res_dir / "cpu_demo" / "cube.nc").write_bytes((res_dir / "survey" / "cube.nc").read_bytes()[:300])
    res = run("--results", res_dir, "--out", tmp_path / "figs")
    assert res.exit_code == 1
    built = lines_of(res.output, "built")
    failed = lines_of(res.output, "failed")
    assert set(built) == SWE_FIGS | SURVEY_FIGS
    for name in SWE_FIGS | SURVEY_FIGS:
        assert (tmp_path / "figs" / f"{name}.json").exists() and (tmp_path / "figs" / f"{name}.png").exists()
    assert {"fig02c", "fig23", "fig24", "fig19"} <= set(failed)
    assert re.search(r"cube mwe_cpu .*empty cube: no draw was run.*`hotmess run experiment=mwe_cpu out_dir=",
                     failed["fig23"])
    assert re.search(r"cube mwe_open_cpu .*foreign cube: its experiment attribute is 'survey'.*"
                     r"`hotmess run experiment=mwe_open_cpu", failed["fig24"])
    assert re.search(r"cube cpu_demo .*cannot be read.*`hotmess run experiment=cpu_demo", failed["fig19"])
    assert "mwe_cpu" in failed["fig02c"] and "mwe_open_cpu" in failed["fig02c"]  # both of its bad cubes, one line
    # the report page still lists every built figure and every failure
    page = (tmp_path / "figs" / "index.html").read_text()
    for name in built:
        assert f'id="fig-{name}"' in page
    for name in failed:
        assert f'<li data-figure="{name}">' in page


def test_missing_variable_names_the_variable_and_the_command(tmp_path):
    res_dir = tmp_path / "results"
    path = good_swe(res_dir)
    ds = xr.open_dataset(path).load().drop_vars("actions")
    save_cube(ds, path)
    res = run("--results", res_dir, "--out", tmp_path / "figs", "--only", "fig02b", "--only", "fig25")
    assert res.exit_code == 1
    failed = lines_of(res.output, "failed")
    for name in ("fig02b", "fig25"):
        assert re.search(rf"figure {name} needs variable\(s\) \['actions'\].*swebench_probe.*"
                         r"remake it with `hotmess run experiment=swebench_probe", failed[name])


def test_kind_mismatch_is_foreign(tmp_path):
    write(mc_cube(np.zeros((2, 2), int), [0, 1], np.full((2, 2), 5.0), experiment="swebench_probe"),
          tmp_path / "r", "swebench_probe")
    rep = build.build_figures(tmp_path / "r", tmp_path / "f", only=["fig02b"], index=False)
    assert "foreign cube: it is of kind 'probabilities', figure fig02b reads kind 'tests'" in rep.failed["fig02b"]


def test_only_unknown_lists_known_names(tmp_path):
    (tmp_path / "results").mkdir()
    res = run("--results", tmp_path / "results", "--only", "bogus")
    assert res.exit_code == 2
    assert "unknown figure(s) bogus; known: " in res.output
    known = res.output.split("known: ")[1]
    for name in ("fig02b", "fig19", "fig23", "fig27"):
        assert name in known
    with pytest.raises(build.UnknownFigure, match="unknown figure"):
        build.build_figures(tmp_path / "results", tmp_path / "f", only=["bogus"])


def test_exit_codes_and_unwritable_out(tmp_path):
    res_dir = tmp_path / "results"
    survey(res_dir)
    res = run("--results", res_dir, "--out", tmp_path / "figs")
    assert res.exit_code == 0 and set(lines_of(res.output, "built")) == SURVEY_FIGS
    assert "claims:" in res.output and re.search(r"^fig04b\s+(agrees|disagrees)\s", res.output, re.M)
    (tmp_path / "afile").write_text("x")
    res = run("--results", res_dir, "--out", tmp_path / "afile")  # click's own one-line check
    assert res.exit_code == 2 and "is a file" in res.output
    res = run("--results", res_dir, "--out", tmp_path / "afile" / "sub")
    assert res.exit_code == 1 and "cannot write figures to" in res.output and "pass a writable --out" in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run("--results", empty, "--out", tmp_path / "f2")
    assert res.exit_code == 1 and "no figure built" in res.output


def test_settings_override_declared_options_and_are_recorded(tmp_path):
    res_dir = tmp_path / "results"
    good_swe(res_dir)
    out = tmp_path / "figs"
    res = run("--results", res_dir, "--out", out, "--set", "n_buckets=2", "--set", "fig25.n_buckets=4",
              "--set", "similar_score=0.2")
    assert res.exit_code == 0, res.output
    b = json.loads((out / "fig02b.json").read_text())
    assert b["settings"]["n_buckets"] == 2 and b["options"] == {"n_buckets": 2}
    assert [len(ln["x"]) for ln in b["data"]["lines"]] == [2]
    c = json.loads((out / "fig25.json").read_text())
    assert c["options"] == {"n_buckets": 4} and len(c["data"]["columns"]["actions"][0]["x"]) == 4
    assert json.loads((out / "fig17b.json").read_text())["options"] == {"similar_score": 0.2}
    # defaults when nothing is set; the builder and declared variables are recorded
    rep = build.build_figures(res_dir, tmp_path / "f2", only=["fig02b"], index=False)
    d = rep.stamps["fig02b"]
    assert d["options"] == {"n_buckets": 5} and d["builder"] == "hotmess.paper.swebench_figs:fig02b"
    assert d["variables"] == ["outcome", "actions"] and d["cubes"]["swebench_probe"]["sha256"]
    res = run("--results", res_dir, "--out", out, "--set", "bogus_option=1")
    assert res.exit_code == 2 and "no figure has the option(s) bogus_option" in res.output
    # a count option that is not a positive integer is refused before anything is built
    for bad in ("fig02b.n_buckets=0", "n_buckets=-2", "n_buckets=2.5", "fig21.n_boot=true"):
        res = run("--results", res_dir, "--out", tmp_path / "f3", "--set", bad)
        assert res.exit_code == 2 and "must be a positive integer" in res.output and bad.split("=")[0] in res.output, bad
        assert not (tmp_path / "f3").exists()


def test_list_names_builder_cubes_variables_options():
    res = run("--list")
    assert res.exit_code == 0
    text = res.output
    entries, _ = build.collect_figures()
    for name, e in entries.items():
        block = text.split(f"\n{name}  ")[1] if f"\n{name}  " in text else text.split(f"{name}  ", 1)[1]
        block = block.split("\n\n")[0]
        assert e.builder in block
        assert ", ".join(e.spec.cubes) in block
        for v in e.spec.variables:
            assert v in block
        for k in e.spec.options:
            assert f"option     {k}=" in block
    assert "option     display_floor=0.0001" in text and "hotmess.paper.transcripts:fig19" in text


class FigurePlugin:
    """A third-party plugin registering two figures through the register_figures hook."""

    @hookimpl
    def register_figures(self, register):
        def ok(cubes, settings):
            import matplotlib.pyplot as plt

            ds = cubes["survey"]
            fig, ax = plt.subplots()
            ax.plot([1, 2], [1, settings["scale"]])
            return fig, {"n_entities": int(ds.sizes["entity"]), "scale": settings["scale"],
                         "claims": [{"figure": "plug_ok", "paper": "p", "measure": "m", "value": 1.0,
                                     "verdict": "agrees", "detail": ""}]}

        def broken(cubes, settings):
            raise RuntimeError("plugin bug")

        register("plug_ok", ok, cubes=("survey",), title="A plugin figure", options={"scale": 3},
                 variables=("mean",), caption="from a plugin", kind="survey")
        register("plug_broken", broken, cubes=("survey",), title="A broken plugin figure")
        register("fig04b", ok, cubes=("survey",))  # clashes with a built-in name


def test_plugin_figures_are_built_and_isolated(tmp_path):
    res_dir = tmp_path / "results"
    survey(res_dir)
    plugins.register_plugin(FigurePlugin(), name="figure-plugin-test")
    try:
        res = run("--list")
        assert "plug_ok  A plugin figure" in res.output and "option     scale=3" in res.output
        res = run("--results", res_dir, "--out", tmp_path / "figs", "--set", "plug_ok.scale=5")
    finally:
        plugins.unregister_plugin("figure-plugin-test")
    assert res.exit_code == 1
    built, failed = lines_of(res.output, "built"), lines_of(res.output, "failed")
    assert set(built) == SURVEY_FIGS | {"plug_ok"}
    data = json.loads((tmp_path / "figs" / "plug_ok.json").read_text())
    assert data["data"]["scale"] == 5 and data["source"].startswith("plugin 'figure-plugin-test'")
    assert data["builder"].endswith(":FigurePlugin.register_figures.<locals>.ok")
    assert "raised RuntimeError: plugin bug" in failed["plug_broken"]
    assert "which hotmess already has" in failed["fig04b"]  # the plugin's clash, not the built-in
    assert (tmp_path / "figs" / "fig04b.png").exists()
    assert re.search(r"^plug_ok\s+agrees\s", res.output, re.M)


def test_claims_table_has_a_row_per_built_figure(tmp_path):
    res_dir = tmp_path / "results"
    survey(res_dir)
    good_swe(res_dir)
    rep = build.build_figures(res_dir, tmp_path / "figs")
    rows = build.claims_rows(rep)
    assert [r["figure"] for r in rows] == sorted(rep.built)
    page = (tmp_path / "figs" / "index.html").read_text()
    assert len(re.findall(r'<tr class="claim" data-figure="', page)) == len(rows)
    for name in rep.built:  # images embedded, no external resource
        assert f'alt="{name}"' in page
    assert "data:image/png;base64," in page and not re.search(r'src="(https?:)?//', page)
    stamp = rep.stamps["fig04b"]
    assert stamp["cubes"]["survey"]["config_summary"]["dims"]["entity"] == 12
    assert stamp["cubes"]["survey"]["hotmess_version"] and stamp["cubes"]["survey"]["git_revision"]


def test_interrupted_run_is_missing_with_the_resume_command(tmp_path):
    res_dir = tmp_path / "results"
    survey(res_dir)
    (res_dir / "mwe_cpu" / "parts" / "m__s__16").mkdir(parents=True)  # a run killed before assembly
    res = run("--results", res_dir, "--out", tmp_path / "figs", "--only", "fig23", "--only", "fig04b")
    assert res.exit_code == 0
    missing = lines_of(res.output, "missing")
    assert "hotmess run experiment=mwe_cpu out_dir=" in missing["fig23"]
    assert "an interrupted run, which this command resumes" in missing["fig23"]
    assert "needs one of mwe_mc_frontier, mwe_cpu" in "missing fig23 " + missing["fig23"]
