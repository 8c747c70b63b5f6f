"""The written-down contracts: plugin options (declared, checked, one precedence), unknown
token counts, schema versions on opening a cube, the Task/Embedder base classes."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np
import pytest
import xarray as xr
from omegaconf import OmegaConf

from hotmess.core import options, plugins, schema
from hotmess.core.assembly import token_count
from hotmess.core.backend import Backend, ModelSpec
from hotmess.core.cube import CubeError, open_cube, save_cube
from hotmess.core.embedder import Embedder
from hotmess.core.engine import build_backend
from hotmess.core.experiment import parse_experiment
from hotmess.core.hookspecs import hookimpl
from hotmess.core.types import DrawResult, Outcome


@dataclasses.dataclass
class _Opts:
    dtype: str = "float32"
    batch_size: int = 8
    mode: Literal["a", "b"] = "a"
    scale: float | None = None


class _Recorder(Backend):
    """Records the options and the spec it was built with (no model: sample is not used)."""

    name = "recorder"
    Options = _Opts

    def __init__(self, model, **opts):
        super().__init__(model, **opts)

    def sample(self, requests):  # pragma: no cover - never sampled here
        raise NotImplementedError


class _Plugin:
    @hookimpl
    def register_backends(self, register):
        register("recorder", _Recorder, description="records its options", declares=_Recorder)


@pytest.fixture
def recorder():
    plugins.register_plugin(_Plugin(), name="recorder_plugin")
    yield
    plugins.unregister_plugin("recorder_plugin")


def test_declared_from_dataclass_and_from_signatures():
    d = options.declared(_Recorder, skip=1)
    assert sorted(d.fields) == ["batch_size", "dtype", "mode", "scale"] and not d.open
    assert d.fields["batch_size"] == (int, 8)

    class Base:
        def __init__(self, *, a: int = 1, b: str = "x"):
            pass

    class Child(Base):
        def __init__(self, c: bool = False, **kw):
            super().__init__(**kw)

    d = options.declared(Child)
    assert d.fields == {"c": (bool, False), "a": (int, 1), "b": (str, "x")} and not d.open
    assert options.declared(lambda **kw: None) is None  # declares nothing: passed through


def test_resolve_precedence_unknown_and_types():
    layers = [("backend config", {"dtype": "float32", "batch_size": 4}),
              ("model m/1", {"dtype": "bfloat16"}), ("command line", {"batch_size": 2})]
    assert options.resolve(_Opts, layers, where="backend 'x'") == {"dtype": "bfloat16", "batch_size": 2}
    with pytest.raises(options.OptionsError,
                       match=r"backend 'x': unknown option\(s\) 'dtyp' \(from model m/1\); valid options: "
                             r"\['batch_size', 'dtype', 'mode', 'scale'\]"):
        options.resolve(_Opts, [("model m/1", {"dtyp": "x"})], where="backend 'x'")
    with pytest.raises(options.OptionsError, match=r"'batch_size' = '8' \(from cfg\) is not of type int"):
        options.resolve(_Opts, [("cfg", {"batch_size": "8"})], where="b")
    with pytest.raises(options.OptionsError, match="'mode' = 'c'"):
        options.resolve(_Opts, [("cfg", {"mode": "c"})], where="b")
    assert options.resolve(_Opts, [("cfg", {"scale": 1, "mode": "b"})], where="b") == {"scale": 1, "mode": "b"}
    assert options.conforms(True, int) is False and options.conforms(3, float) is True
    assert options.conforms(["a", "b"], list[str]) and not options.conforms(["a", 1], list[str])


def _exp(tmp_path, overrides=(), **backend):
    cfg = OmegaConf.create({
        "experiment": "x", "out_dir": str(tmp_path), "draws": 2, "task": {"name": "mmlu"},
        "backend": {"name": "recorder", **backend},
        "models": {"m": {"name": "m", "dtype": "float16", "chat_template_kwargs": {"k": 1},
                         "sizes": {"1": {"source": "s", "batch_size": 16}, "2": {"source": "s"}}}},
    })
    for o in overrides:
        key, value = o.split("=")
        OmegaConf.update(cfg, key, yaml_value(value))
    return parse_experiment(cfg, overrides)


def yaml_value(v):
    import yaml

    return yaml.safe_load(v)


def test_engine_backend_options_follow_the_one_precedence(recorder, tmp_path):
    exp = _exp(tmp_path, dtype="float32", batch_size=4, mode="b")
    one, two = exp.families[0].specs
    b1 = build_backend(exp, one)
    # model family beats the backend entry; the size entry beats the family; defaults not passed
    assert b1.options == {"dtype": "float16", "batch_size": 16, "mode": "b"}
    # declared keys leave ModelSpec.options (the backend sees each option once); others stay
    assert b1.model.options == {"chat_template_kwargs": {"k": 1}}
    assert build_backend(exp, two).options == {"dtype": "float16", "batch_size": 4, "mode": "b"}
    # the command line beats the model family
    exp = _exp(tmp_path, ["backend.dtype=bfloat16"], dtype="float32")
    assert build_backend(exp, exp.families[0].specs[0]).options["dtype"] == "bfloat16"
    with pytest.raises(options.OptionsError, match=r"unknown option\(s\) 'bogus' \(from backend config\)"):
        build_backend(_exp(tmp_path, bogus=1), one)


def test_plugins_create_refuses_unknown_task_options_listing_the_valid_ones():
    with pytest.raises(options.OptionsError, match=r"task 'mmlu': unknown option\(s\) 'per_subjetc'.*'per_subject'"):
        plugins.create("tasks", "mmlu", per_subjetc=3)
    with pytest.raises(options.OptionsError, match=r"producer 'survey'.*valid options: \['csv', 'n_entities'\]"):
        plugins.create("producers", "survey", cvs="x")


def test_unknown_token_counts_are_none_and_nan_in_the_cube():
    assert math.isnan(token_count(None)) and math.isnan(token_count(-1)) and token_count(7) == 7.0
    from hotmess.core.types import SampleRequest
    from hotmess.testing import check_results

    req = SampleRequest(question_id="q", seeds=(1,), prompt="p", budget=4)
    check_results([req], [[DrawResult(text="x", output_tokens=None, reasoning_tokens=None, seed=1)]])
    with pytest.raises(AssertionError, match="or None where unknown"):
        check_results([req], [[DrawResult(text="x", output_tokens=-1, reasoning_tokens=0, seed=1)]])


def _tiny(attrs):
    return xr.Dataset({"rank": (("measure", "entity", "rater"), np.ones((1, 2, 1)))},
                      coords={"measure": ["intelligence"], "entity": ["a", "b"], "rater": ["r"]}, attrs=attrs)


def test_open_cube_upgrades_old_versions_and_refuses_newer(tmp_path):
    old = save_cube(_tiny({}), tmp_path / "old.nc")  # a cube of hotmess 0.1: no schema_version
    ds = open_cube(old)
    assert ds.attrs["schema_version"] == str(schema.SCHEMA_VERSION)
    assert ds.attrs["schema_upgraded_from"] == "1" and ds.attrs["outcome_kind"] == "survey"
    new = save_cube(_tiny({"schema_version": "99"}), tmp_path / "new.nc")
    with pytest.raises(CubeError, match=r"new\.nc: cube has schema_version 99, newer than this hotmess reads \(2\)"):
        open_cube(new)


def test_base_classes_carry_the_documented_defaults():
    from hotmess.core.task import Task

    assert Task.question_coords == () and Task.Options is None and not hasattr(Task, "runs_itself")
    assert Outcome(np.ones(1)).rule == ""
    assert DrawResult(text="").extra == {}

    class Const(Embedder):
        dim = 2

        def embed(self, texts):
            return np.zeros((len(texts), 2))

    from hotmess.testing import check_embedder

    assert check_embedder(Const()).shape == (4, 2)
    assert Const().info() == {"embedder": "embedder"}
    with pytest.raises(TypeError):
        Embedder()  # embed is abstract
    spec = ModelSpec(name="m", size="s", source="x")
    assert spec.options == {}
