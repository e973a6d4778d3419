#!/usr/bin/env bash
# Issue 23's short runs: LoRA rank and lr chosen on the development set's D8-averaged NLL, before the long run.
# Each: configs/finetune-local.yaml, 50 steps x 4 sequences, then the held-out (8 D8 views) and dev-set NLLs. The base model's
# figures before training are the same for every run: the first run measures them, the others skip them.
#   bash benchmarks/training/finetune_choice.sh [NAME ...]      (about 15 minutes a run on this 2-core CPU, bf16, idle)
set -euo pipefail
cd "$(dirname "$0")/../.."  # the repository
declare -A RUNS=(
  [r16-lr3e-4]="lora.r=16 train.lr=3e-4 eval.at_start=true"
  [r16-lr1e-3]="lora.r=16 train.lr=1e-3 eval.at_start=false"
  [r64-lr3e-4]="lora.r=64 train.lr=3e-4 eval.at_start=false"
  [r64-lr1e-3]="lora.r=64 train.lr=1e-3 eval.at_start=false"
)
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(r16-lr3e-4 r16-lr1e-3 r64-lr3e-4 r64-lr1e-3)
for name in "${names[@]}"; do
  sets=()
  for s in ${RUNS[$name]}; do sets+=(--set "$s"); done
  [ -f "runs/choice-$name/finetune.json" ] || .venv/bin/python -m arc_ttt finetune --config configs/finetune-local.yaml \
    --quiet --set train.steps=50 --set eval.every_steps=50 --set eval.greedy_tasks=0 \
    --set "output.dir=runs/choice-$name" "${sets[@]}"
  .venv/bin/python - "$name" <<'PY'
import json, sys
c = json.load(open(f"runs/choice-{sys.argv[1]}/finetune.json"))
a = c["holdout"]["after"]
print(json.dumps({"name": sys.argv[1], "lora_r": c["lora"]["r"], "lr": c["train"]["lr"], "tokens": c["tokens"],
                  "seconds": c["train_seconds"], "before": c["holdout"]["before"],
                  **{k: a.get(k) for k in ("nll", "nll_identity", "dev_nll")}}))
PY
done
