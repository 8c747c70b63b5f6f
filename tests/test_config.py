"""Hydra composition and the engine's reading of the config (no model is loaded here)."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hotmess.core.engine import (
    Budget,
    ConfigError,
    apply_scale,
    check_manifest,
    model_specs,
    parse_budgets,
    parse_experiment,
    sampling_for,
)
from hotmess.core.hydra_app import CONF_DIR

EXPERIMENTS = sorted(p.stem for p in (Path(CONF_DIR) / "experiment").glob("*.yaml"))


def _compose(*overrides):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def test_default_is_cpu_demo_with_gemma():
    cfg = _compose()
    assert cfg.experiment == "cpu_demo"
    assert cfg.backend.name == "hf"
    assert cfg.task.name == "mmlu"
    (mcfg, specs), = model_specs(cfg)
    assert [s.size for s in specs] == ["270M"]
    assert specs[0].name == "gemma3" and specs[0].source.startswith("pypi:")
    assert cfg.draws >= 10
    assert [b.tokens for b in parse_budgets(cfg.budgets)] == [32, 128]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_resolves(name):
    cfg = _compose(f"experiment={name}")
    cfg = apply_scale(cfg)
    OmegaConf.to_container(cfg, resolve=True)  # no missing interpolation
    assert cfg.experiment == name
    # a sampled experiment selects a task and a backend; the others a producer instead
    assert bool(cfg.get("producer")) != bool(cfg.get("task") and cfg.get("backend"))
    exp = parse_experiment(cfg)
    assert exp.name == name and (exp.producer or exp.task)["name"]


def test_parse_budgets_rules():
    assert parse_budgets(None) == [Budget("none")]
    got = parse_budgets({"1k": 1024, "low": "low", "free": None})
    assert got == [Budget("1k", tokens=1024), Budget("low", effort="low"), Budget("free")]
    with pytest.raises(ConfigError, match="budgets.bad"):
        parse_budgets({"bad": -3})
    with pytest.raises(ConfigError, match="budgets.x"):
        parse_budgets({"x": 1.5})
    assert parse_budgets([16, 64]) == [Budget("16", tokens=16), Budget("64", tokens=64)]
    assert parse_budgets(["low", "high"]) == [Budget("low", effort="low"), Budget("high", effort="high")]
    with pytest.raises(ConfigError, match="duplicate"):
        parse_budgets([16, 16])


def test_model_specs_sizes_and_errors():
    cfg = OmegaConf.create({"models": {"q": {"name": "qwen3", "chat": True, "thinking": {"end": "</think>"},
                                             "sampling": {"temperature": 0.6, "top_k": 20},
                                             "sizes": {"1.7B": {"source": "Qwen/Qwen3-1.7B", "params": 1.7e9},
                                                       "4B": {"source": "Qwen/Qwen3-4B", "params": 4e9}},
                                             "run_sizes": ["4B"]}},
                            "sampling": {"temperature": 1.0, "top_p": 0.95}})
    (mcfg, specs), = model_specs(cfg)
    assert [(s.name, s.size, s.params, s.chat) for s in specs] == [("qwen3", "4B", 4e9, True)]
    assert specs[0].thinking == {"end": "</think>"}
    sp = sampling_for(cfg, mcfg)
    assert (sp.temperature, sp.top_k, sp.top_p) == (0.6, 20, 0.95)  # model overrides experiment
    cfg.models.q.run_sizes = ["70B"]
    with pytest.raises(ConfigError, match="70B"):
        model_specs(cfg)
    with pytest.raises(ConfigError, match="no models"):
        model_specs(OmegaConf.create({"models": {}}))


def test_scale_merge_and_unknown_scale():
    cfg = OmegaConf.create({"experiment": "x", "scale": "paper", "draws": 10,
                            "scales": {"cpu": {"draws": 4}, "paper": {"draws": 30}}})
    assert apply_scale(cfg).draws == 30
    # a command-line override wins over the scale block
    cfg.draws = 5
    assert apply_scale(cfg, overrides=["draws=5", "experiment=x"]).draws == 5
    assert apply_scale(cfg, overrides=["+extra.k=[1,2]"]).extra.k == [1, 2]
    cfg.scale = "huge"
    with pytest.raises(ConfigError, match="huge"):
        apply_scale(cfg)


def test_scale_without_scales_block():
    cfg = OmegaConf.create({"experiment": "x", "scale": "bogus"})
    with pytest.raises(ConfigError, match="bogus"):
        apply_scale(cfg)
    cfg.scale = "paper"
    assert apply_scale(cfg) is cfg


def test_manifest_records_models_and_backend(tmp_path):
    from hotmess.core.cube import CubeStore

    base = {"seed": 0, "draws": 4, "seeds_per_context": 2, "chunk_questions": 2, "task": {"name": "mmlu"},
            "sampling": {"temperature": 1.0}, "backend": {"name": "hf", "dtype": "float32"},
            "models": {"g": {"name": "gemma3", "sizes": {"270M": {"source": "pypi:x", "params": 1}}}}}
    store = CubeStore(tmp_path)

    def check(cfg):
        families = [(m, s, []) for m, s in model_specs(cfg)]
        check_manifest(tmp_path, cfg, families, store)

    cfg = OmegaConf.create(base)
    check(cfg)
    changed = OmegaConf.create(base)
    changed.models.g.sizes["270M"].source = "other/model"
    check(changed)  # no part file yet (a failed first run): the manifest is rewritten
    (store.parts_dir / "gemma3__270M__8").mkdir(parents=True)
    (store.parts_dir / "gemma3__270M__8" / "chunk00000.nc").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"\(models.gemma3/270M.source: 'other/model' -> 'pypi:x'\)"):
        check(cfg)
    changed.backend.dtype = "bfloat16"
    with pytest.raises(ConfigError, match=r"backend.dtype: 'float32' -> 'bfloat16'"):
        check(changed)
    # adding a model is a new cell, not a change
    more = OmegaConf.create(base)
    more.models.g.sizes["270M"].source = "other/model"
    more.models.l = {"name": "llama3", "sizes": {"1B": {"source": "meta/l"}}}
    check(more)


def test_manifest_refuses_mixed_settings(tmp_path):
    cfg = OmegaConf.create({"seed": 0, "draws": 4, "seeds_per_context": 2, "chunk_questions": 2,
                            "task": {"name": "mmlu"}, "sampling": {"temperature": 1.0}})
    check_manifest(tmp_path, cfg)
    check_manifest(tmp_path, cfg)  # same settings: resumable
    cfg.draws = 8
    with pytest.raises(ConfigError, match="draws"):
        check_manifest(tmp_path, cfg)
