"""The cube store: netCDF round trip, atomic writes, combining parts with missing cells."""

import shutil
import subprocess

import numpy as np
import pytest
import xarray as xr

from hotmess.core.cube import CubeError, CubeStore, open_cube, provenance, save_cube, scrub


def _part(model, size, budget, qids, draws=3, seed=0):
    rng = np.random.default_rng(seed)
    n = len(qids)
    p = rng.dirichlet(np.ones(4), size=(n, draws))
    return xr.Dataset(
        {
            "outcome": (("question", "draw", "option"), p),
            "reasoning_tokens": (("question", "draw"), rng.integers(1, 50, (n, draws)).astype(float)),
            "finish_reason": (("question", "draw"), np.zeros((n, draws))),
            "format_error": (("question", "draw"), np.zeros((n, draws))),
            "seed": (("question", "draw"), rng.integers(0, 2**31, (n, draws)).astype(float)),
            "text": (("question", "draw"), np.array([[f"Answer: {q}-{d} é" for d in range(draws)] for q in qids], dtype=object)),
        },
        coords={
            "question": qids, "draw": np.arange(draws), "option": list("ABCD"),
            "subject": ("question", np.array(["s"] * n, dtype=object)),
            "target": ("question", np.arange(n) % 4),
            "model": model, "size": size, "budget": budget, "params": 1e6 if size == "S" else 2e6,
            "budget_tokens": float(budget), "budget_effort": "",
        },
    )


def test_save_open_roundtrip_text_and_nan(tmp_path):
    ds = _part("m", "S", "8", ["q0", "q1"])
    ds["outcome"][0, 1, :] = np.nan
    path = save_cube(ds, tmp_path / "c.nc")
    back = open_cube(path)
    np.testing.assert_allclose(back["outcome"].values, ds["outcome"].values)
    assert back["text"].values[1, 2] == "Answer: q1-2 é"
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind
    # readable without hotmess code: plain xarray and the netCDF4 library
    import netCDF4

    with netCDF4.Dataset(path) as nc:
        assert nc["finish_reason"].dtype == np.int8
        assert nc["text"].filters() is None or not nc["text"].filters().get("zlib")
        assert nc["outcome"].filters()["zlib"]


def test_open_missing_or_corrupt_names_file(tmp_path):
    with pytest.raises(CubeError, match="no cube at"):
        open_cube(tmp_path / "nope.nc")
    bad = tmp_path / "bad.nc"
    bad.write_bytes(b"not netcdf")
    with pytest.raises(CubeError, match="bad.nc"):
        open_cube(bad)


def test_combine_fills_missing_cells_with_nan(tmp_path):
    store = CubeStore(tmp_path / "exp")
    store.write_part(_part("m", "S", "8", ["q0", "q1"], seed=1), "m", "S", "8", 0)
    store.write_part(_part("m", "S", "8", ["q2"], seed=2), "m", "S", "8", 1)
    store.write_part(_part("m", "L", "16", ["q0", "q1"], seed=3), "m", "L", "16", 0)
    ds = store.combine(attrs={"experiment": "t"},
                       order={"size": ["S", "L"], "budget": ["8", "16"], "question": ["q0", "q1", "q2"]})
    assert dict(ds.sizes) == {"model": 1, "size": 2, "budget": 2, "question": 3, "draw": 3, "option": 4}
    # cells never run are NaN, not zero
    assert np.isnan(ds["outcome"].sel(size="S", budget="16")).all()
    assert not np.isnan(ds["outcome"].sel(size="L", budget="16", question=["q0", "q1"])).any()
    assert np.isnan(ds["outcome"].sel(size="L", budget="8")).all()
    assert np.isnan(ds["outcome"].sel(size="L", budget="16", question="q2")).all()
    p2 = _part("m", "S", "8", ["q2"], seed=2)
    np.testing.assert_allclose(ds["outcome"].sel(model="m", size="S", budget="8", question="q2").values,
                               p2["outcome"].values[0])
    assert ds["params"].sel(model="m", size="L").item() == 2e6
    back = open_cube(store.cube_path)
    assert back.attrs["experiment"] == "t"
    assert back["text"].sel(model="m", size="L", budget="16", question="q2").values.tolist() == ["", "", ""]
    assert back["text"].sel(model="m", size="L", budget="16", question="q0").values[0] == "Answer: q0-0 é"
    assert np.isnan(back["finish_reason"].sel(size="L", budget="8")).all()
    if shutil.which("ncdump"):  # netcdf-bin: installed by .ci/run; optional elsewhere
        out = subprocess.run(["ncdump", "-h", str(store.cube_path)], capture_output=True, text=True, check=True)
        assert "outcome(model, size, budget, question, draw, option)" in out.stdout


def test_provenance_scrubs_secrets_and_home(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = {"backend": {"api_key": "sk-123", "base_url": "http://127.0.0.1:1"}, "out_dir": f"{tmp_path}/r"}
    attrs = provenance(cfg, backend_info={"token": "abc"})
    assert "sk-123" not in attrs["config"] and "<redacted>" in attrs["config"]
    assert str(tmp_path) not in attrs["config"] and "~/r" in attrs["config"]
    assert "abc" not in attrs["backend_info"]
    assert scrub({"nested": [{"password": "x"}]}) == {"nested": [{"password": "<redacted>"}]}
    # counts of tokens are settings, not secrets
    kept = {"max_tokens": 8, "max_reasoning_tokens": 2048, "budget_tokens": 64, "api_key_env": "OPENAI_API_KEY"}
    assert scrub(kept) == kept
    assert scrub({"hf_token": "hf_x", "access_token": "t", "authorization": "Bearer y"}) == {
        "hf_token": "<redacted>", "access_token": "<redacted>", "authorization": "<redacted>"}
    assert attrs["hotmess_version"]


def test_combine_parts_with_different_optional_variables(tmp_path):
    store = CubeStore(tmp_path / "exp")
    a = _part("m", "S", "8", ["q0"], seed=1)
    a["seed_sent"] = (("question", "draw"), np.ones((1, 3)))
    b = _part("m", "S", "8", ["q1"], seed=2)
    b["reasoning_tokens_source"] = (("question", "draw"), np.array([["usage"] * 3], dtype=object))
    store.write_part(a, "m", "S", "8", 0)
    store.write_part(b, "m", "S", "8", 1)
    ds = store.combine()
    assert ds["seed_sent"].sel(model="m", size="S", budget="8", question="q0").values.tolist() == [1, 1, 1]
    assert np.isnan(ds["seed_sent"].sel(model="m", size="S", budget="8", question="q1")).all()
    assert ds["reasoning_tokens_source"].sel(model="m", size="S", budget="8").values.tolist() == [["", "", ""], ["usage"] * 3]


def test_combining_the_same_parts_again_keeps_the_cube_file(tmp_path):
    """A rerun with nothing new (same parts, a new `created` stamp) leaves cube.nc byte for
    byte as it was, so its SHA-256 in the figures' stamps stays; new data rewrites it."""
    import hashlib
    import time

    def sha(p):
        return hashlib.sha256(p.read_bytes()).hexdigest()

    store = CubeStore(tmp_path / "exp")
    store.write_part(_part("m", "S", "8", ["q0", "q1"], seed=1), "m", "S", "8", 0)
    store.combine(attrs={"experiment": "t", "created": "2026-01-01T00:00:00+00:00"})
    before, mtime = sha(store.cube_path), store.cube_path.stat().st_mtime_ns
    time.sleep(0.01)
    store.combine(attrs={"experiment": "t", "created": "2026-12-02T00:00:00+00:00"})
    assert sha(store.cube_path) == before and store.cube_path.stat().st_mtime_ns == mtime
    # another attribute or another value: rewritten
    store.combine(attrs={"experiment": "t2", "created": "2026-12-02T00:00:00+00:00"})
    assert open_cube(store.cube_path).attrs["experiment"] == "t2"
    store.write_part(_part("m", "S", "8", ["q2"], seed=2), "m", "S", "8", 1)
    ds = store.combine(attrs={"experiment": "t2", "created": "2026-12-02T00:00:00+00:00"})
    assert open_cube(store.cube_path).sizes["question"] == 3 == ds.sizes["question"]
    # a producer's cube through write_cube: the same rule
    one = _part("m", "S", "8", ["q0"], seed=5).assign_attrs(created="a")
    store.write_cube(one)
    first = sha(store.cube_path)
    store.write_cube(one.assign_attrs(created="b"))
    assert sha(store.cube_path) == first
    store.write_cube(one.assign_attrs(created="b", note="x"))
    assert sha(store.cube_path) != first
