"""Real multiple-choice cubes for the figure tests (tests/test_figs_mc_real.py): Gemma 3 270M
(hf backend, CPU) on MMLU (the shared local copy) and on GPQA-schema records written here
(invented arithmetic questions, four writer difficulty labels). A second model entry with
another sampling temperature (and another parameter count) stands in for a second size, so
that size axes have two points. Kept small: the CPU is shared."""

from __future__ import annotations

import csv
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hotmess.core.engine import run_experiment
from hotmess.core.hydra_app import CONF_DIR

MMLU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mmlu"
LEVELS = [
    "Easy undergraduate level (or easier)",
    "Hard undergraduate level (could be a question on a hard undergraduate exam for students majoring in the subject)",
    "Hard graduate level (could be a question on a hard graduate exam for PhD students in the domain)",
    "Post-graduate level or harder (only individuals with years of highly specialized expertise could reliably answer these)",
]
GPQA_COLUMNS = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3",
                "Explanation", "Record ID", "High-level domain", "Subdomain", "Writer's Difficulty Estimate"]
COMMON = ["draws=4", "seeds_per_context=2", "chunk_questions=4", "sampling.max_tokens=3"]
#: GPQA stands in for the frontier cubes (two budgets); MMLU for the scaling cubes (one budget).
BUDGETS = {"gpqa": "budgets=[4,12]", "mmlu": "budgets=[4]"}


def write_gpqa(d: Path, n: int = 8) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "gpqa_main.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=GPQA_COLUMNS)
        w.writeheader()
        for i in range(n):
            a, b = 3 + i, 7 + 2 * i
            w.writerow({"Question": f"Invented test question {i}. What is {a} + {b}?",
                        "Correct Answer": str(a + b), "Incorrect Answer 1": str(a + b + 1),
                        "Incorrect Answer 2": str(a * b), "Incorrect Answer 3": str(a - b),
                        "Explanation": "Addition.", "Record ID": f"recFIG{i:04d}",
                        "High-level domain": "Physics", "Subdomain": "Arithmetic (test)",
                        "Writer's Difficulty Estimate": LEVELS[i % 4]})
    return d


def _second_size(cfg):
    OmegaConf.set_struct(cfg, False)
    m = OmegaConf.to_container(cfg.models.gemma3)
    src = next(iter(m["sizes"].values()))["source"]
    m["sizes"] = {"270M-T0.5": {"source": src, "params": 1.0e9}}
    m["sampling"] = {"temperature": 0.5}
    cfg.models["gemma3_t05"] = m
    return cfg


def make(out: Path, which: str) -> Path:
    """Run one real experiment (``which`` = "mmlu" or "gpqa") into ``out``; returns the cube path."""
    if which == "mmlu":
        task = [f"task.data_dir={MMLU}", "task.subjects=[marketing,high_school_geography]",
                "task.per_subject=2", "task.n_shot=1"]
        name = "cpu_demo"
    else:
        task = [f"task.data_dir={write_gpqa(out / 'gpqa_data')}", "task.limit=4", "task.n_shot=1"]
        name = "gpqa_cpu"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={name}", *task, *COMMON, BUDGETS[which], f"out_dir={out}"])
    return run_experiment(_second_size(cfg))


def link(results: Path, cube: Path, names) -> None:
    """Make ``results/<name>/cube.nc`` a copy of ``cube`` standing in for every experiment name
    (its ``experiment`` attribute set to the name: ``hotmess paper`` refuses a cube whose
    attribute names another experiment as foreign)."""
    from hotmess.core.cube import open_cube, save_cube

    ds = None
    for n in names:
        dst = results / n / "cube.nc"
        if not dst.exists():
            ds = open_cube(cube) if ds is None else ds
            ds.attrs["experiment"] = n
            save_cube(ds, dst)


MMLU_NAMES = ("mmlu_qwen3", "mmlu_open", "cpu_demo")
GPQA_NAMES = ("gpqa_frontier", "gpqa_frontier_letter", "gpqa_qwen3", "gpqa_qwen3_base", "gpqa_qwen3_instruct",
              "gpqa_open", "gpqa_ensembling", "gpqa_sample_efficiency", "gpqa_cpu")


if __name__ == "__main__":  # make the cubes once for development: python tests/figs_mc_cubes.py OUT
    import sys

    out = Path(sys.argv[1])
    for which in sys.argv[2:] or ["mmlu", "gpqa"]:
        print(make(out / which, which), flush=True)
