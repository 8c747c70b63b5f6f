"""Diagnosis and compute-scaling study of the synthetic optimizer (issue 14; docs/science.md).

Two commands, each on one CPU thread (``torch.set_num_threads(1)``) unless ``--threads``:

``diagnose``: train one size with the settings of ``--scale`` (plus ``key=value`` overrides of
the ``synthetic`` block), keep the model at every evaluation step, and run
:func:`hotmess.plugins.synthetic.diagnose.diagnose` on each kept model (held-out teacher
pairs from fresh starts; rollouts against the teacher). Writes one JSON.

``compute``: the compute-scaling study: for every training budget in ``--budgets`` and every
training seed in ``--seeds``, the whole experiment (every size) through
:func:`hotmess.plugins.synthetic.experiment.run_experiment` into
``<out>/steps<B>_seed<s>/cube.nc`` (resumable; the problem and start points stay those of the
experiment seed, ``synthetic.train_seed`` varies initialisation and batch order). ``summary``
then writes ``<out>/cube.nc``, a ``summary`` cube of each run's claim statistics
(:func:`hotmess.paper.synthetic_figs.claim_statistics`), which the ``figsyn_compute`` figure
reads.

Usage::

    nice -n 15 python scripts/synthetic_study.py diagnose --size 16K --steps 2000 --out results/synthetic_diagnose
    nice -n 15 python scripts/synthetic_study.py compute --budgets 500 2000 --seeds 1 2 3 --out results/synthetic_compute
    python scripts/synthetic_study.py summary --out results/synthetic_compute
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np


def scale_config(scale: str, overrides: list[str]) -> dict:
    """The ``synthetic`` block of conf/experiment/synthetic.yaml at ``scale`` with
    ``key=value`` overrides (dotted keys inside the block, e.g. ``train.steps=500``)."""
    from omegaconf import OmegaConf

    import hotmess.conf

    conf = OmegaConf.load(Path(hotmess.conf.__file__).parent / "experiment" / "synthetic.yaml")
    block = OmegaConf.merge(conf.synthetic, conf.scales[scale].synthetic)
    for item in overrides:
        key, _, value = item.partition("=")
        if not _:
            sys.exit(f"override {item!r} is not key=value")
        OmegaConf.update(block, key, _parse(value), merge=True)
    return OmegaConf.to_container(block, resolve=True)


def _parse(value: str):
    import yaml

    return yaml.safe_load(value)


def cmd_diagnose(args) -> None:
    import torch

    from hotmess.core.seeding import derive_seed
    from hotmess.plugins.synthetic.diagnose import diagnose
    from hotmess.plugins.synthetic.encoding import tokens_per_float
    from hotmess.plugins.synthetic.experiment import (
        SynthConfig,
        eval_starts,
        make_experiment_problem,
        make_training_data,
        training_starts,
    )
    from hotmess.plugins.synthetic.model import build_model
    from hotmess.plugins.synthetic.problem import teacher_trajectories
    from hotmess.plugins.synthetic.train import describe, train

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    raw = scale_config(args.scale, args.set)
    raw["train"]["steps"] = args.steps
    raw["train"]["eval_every"] = args.eval_every
    raw["train"]["checkpoint_every"] = args.eval_every
    cfg = SynthConfig.from_mapping(raw)
    size = next((s for s in cfg.sizes if s["name"] == args.size), None)
    if size is None:
        sys.exit(f"--size {args.size!r} not among {[s['name'] for s in cfg.sizes]}")
    seed = args.seed
    problem = make_experiment_problem(cfg, seed)
    d = problem.dim
    n_x = d * tokens_per_float(cfg.precision)
    t0 = time.perf_counter()
    tr, te = make_training_data(cfg, problem, seed)
    data_s = time.perf_counter() - t0
    # held-out pairs from fresh starts of the same distribution, every step of the trajectory
    rng = np.random.default_rng(derive_seed(seed, "diag-starts", 0))
    hx0 = training_starts(cfg, problem, args.heldout_trajectories, rng)  # the training start distribution
    hxs, hus = teacher_trajectories(problem, hx0, cfg.data.trajectory_steps, cfg.step_norm)
    pick = rng.choice(hus.shape[0] * hus.shape[1], args.heldout_pairs, replace=False)
    hx = hxs[:-1].reshape(-1, d)[pick]
    hu = hus.reshape(-1, d)[pick]
    starts = eval_starts(cfg, problem, seed)[: args.starts]
    tcfg = cfg.train_config()
    tseed = cfg.train_seed if getattr(cfg, "train_seed", None) is not None else seed
    model = build_model(cfg.spec(size), 12, 2 * n_x, derive_seed(tseed, "init", size["name"]))
    keep = {}

    def progress(step, trl, tel):
        keep[step] = (copy.deepcopy(model.state_dict()), trl, tel)
        print(f"{args.size} step {step} train {trl:.4f} test {tel:.4f} ({time.perf_counter() - t1:.0f}s)", flush=True)

    t1 = time.perf_counter()
    hist = train(model, torch.from_numpy(tr), torch.from_numpy(te), tcfg, seed=tseed, n_x=n_x, progress=progress)
    train_s = time.perf_counter() - t1
    out = {"scale": args.scale, "overrides": args.set, "size": size, **describe(model), "seed": seed,
           "steps": args.steps, "threads": args.threads, "train_seconds": train_s, "data_seconds": data_s,
           "steps_per_second": args.steps / train_s, "history": vars(hist), "checkpoints": {}}
    for step, (state, trl, tel) in sorted(keep.items()):
        if args.diag_every and step % args.diag_every and step != args.steps:
            continue
        m = copy.deepcopy(model)
        m.load_state_dict(state)
        t2 = time.perf_counter()
        dg = diagnose(m, problem, hx, hu, starts, precision=cfg.precision, step_norm=cfg.step_norm,
                      rollout_steps=cfg.rollout.steps, record_every=args.record_every)
        dg.update({"train_loss": trl, "test_loss": tel, "seconds": time.perf_counter() - t2})
        out["checkpoints"][str(step)] = dg
        r = dg["rollout"]
        print(f"  diag step {step}: acc {dg['token_accuracy']['per_position']} "
              f"u rel err med {dg['step_error']['rel_error']['median']:.3f} cos {dg['step_error']['cosine']['median']:.3f} "
              f"final dist to teacher {r['to_teacher']['median'][-1]:.4f} to min {r['model_to_min']['median'][-1]:.4f} "
              f"(teacher {r['teacher_to_min']['median'][-1]:.4f}) stayed {r['stayed']:.2f} ({dg['seconds']:.0f}s)",
              flush=True)
    path = Path(args.out)
    path.mkdir(parents=True, exist_ok=True)
    f = path / f"{args.tag or args.scale}_{args.size}_steps{args.steps}_seed{seed}.json"
    f.write_text(json.dumps(out, indent=1))
    print(f"wrote {f} in {time.perf_counter() - t0:.0f}s", flush=True)


def cmd_compute(args) -> None:
    import torch

    from hotmess.plugins.synthetic.experiment import SynthConfig, run_experiment

    torch.set_num_threads(args.threads)
    for budget in args.budgets:
        for s in args.seeds:
            raw = scale_config(args.scale, args.set)
            raw["train"]["steps"] = int(budget)
            raw["train"]["warmup"] = min(raw["train"].get("warmup", 100), max(1, int(budget) // 10))
            ev = raw["train"].get("eval_every", 250)
            if budget % ev:
                raw["train"]["eval_every"] = raw["train"]["checkpoint_every"] = int(budget)
            raw["train_seed"] = int(s)
            raw["threads"] = args.threads
            root = Path(args.out) / f"steps{budget}_seed{s}"
            t0 = time.perf_counter()
            run_experiment(SynthConfig.from_mapping(raw), root, seed=args.seed)
            print(f"budget {budget} seed {s}: {time.perf_counter() - t0:.0f}s -> {root}/cube.nc", flush=True)
    cmd_summary(args)


def cmd_summary(args) -> None:
    from hotmess.paper.synthetic_compute_fig import write_summary

    print(f"wrote {write_summary(args.out)}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("diagnose", "compute", "summary"):
        q = sub.add_parser(name)
        q.add_argument("--out", required=True)
        q.add_argument("--scale", default="cpu")
        q.add_argument("--seed", type=int, default=0, help="experiment seed (problem, starts)")
        q.add_argument("--threads", type=int, default=1)
        q.add_argument("--set", nargs="*", default=[], help="key=value overrides of the synthetic block")
        if name == "diagnose":
            q.add_argument("--size", required=True)
            q.add_argument("--steps", type=int, default=2000)
            q.add_argument("--eval-every", type=int, default=250)
            q.add_argument("--diag-every", type=int, default=0, help="diagnose every this many steps (0 = every eval)")
            q.add_argument("--starts", type=int, default=64)
            q.add_argument("--record-every", type=int, default=4)
            q.add_argument("--heldout-trajectories", type=int, default=50)
            q.add_argument("--heldout-pairs", type=int, default=2048)
            q.add_argument("--tag", default="")
        if name == "compute":
            q.add_argument("--budgets", type=int, nargs="+", required=True)
            q.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = p.parse_args(argv)
    {"diagnose": cmd_diagnose, "compute": cmd_compute, "summary": cmd_summary}[args.cmd](args)


if __name__ == "__main__":
    main()
