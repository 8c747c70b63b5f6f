#!/usr/bin/env bash
# Make the four cubes of the refactor identity check (issue 8) with small but real settings:
#   scripts/refactor_cubes.sh OUT_DIR [hotmess command]
# Run once from the old code and once from the new, then compare with
#   python scripts/compare_cubes.py OLD_DIR NEW_DIR
# swebench_probe: pass REUSE_LOGS=<old OUT_DIR> to convert the old run's Inspect logs
# (a fixed log) instead of sampling again.
set -euo pipefail
OUT=$1
HM=${2:-hotmess}
MMLU=${MMLU_DIR:-/work/shared/data/mmlu}
mkdir -p "$OUT"
if [ -n "${ONLY:-}" ]; then set -- $ONLY; else set -- cpu_demo survey synthetic swebench_probe; fi
for exp in "$@"; do
  case $exp in
    cpu_demo) $HM run experiment=cpu_demo task.data_dir="$MMLU" out_dir="$OUT" draws=4 task.per_subject=2 ;;
    survey) $HM run experiment=survey out_dir="$OUT" ;;
    synthetic) $HM run experiment=synthetic out_dir="$OUT" \
        'synthetic.sizes=[{name:s1,layers:1,width:16,heads:2},{name:s2,layers:1,width:24,heads:2}]' \
        synthetic.data.trajectories=40 synthetic.data.trajectory_steps=60 synthetic.train.steps=40 \
        synthetic.train.batch_size=32 synthetic.train.warmup=5 synthetic.train.eval_every=20 \
        synthetic.train.checkpoint_every=20 synthetic.train.eval_pairs=128 synthetic.rollout.starts=24 \
        synthetic.rollout.steps=30 synthetic.rollout.record_every=3 synthetic.threads=1 ;;
    swebench_probe)
      if [ -n "${REUSE_LOGS:-}" ]; then
        mkdir -p "$OUT/swebench_probe"; rm -rf "$OUT/swebench_probe/logs"
        cp -r "$REUSE_LOGS/swebench_probe/logs" "$OUT/swebench_probe/logs"
      fi
      HF_HUB_OFFLINE=1 $HM run experiment=swebench_probe out_dir="$OUT" draws=2 ;;
  esac
done
