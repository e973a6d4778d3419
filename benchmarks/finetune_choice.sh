#!/usr/bin/env bash
# Issue 23's short runs: LoRA rank and lr chosen on the development set's D8-averaged NLL, before the long run.
# Each: configs/finetune-local.yaml, 50 steps x 4 sequences, then the held-out and dev-set NLLs.
#   bash benchmarks/finetune_choice.sh       (about 15 minutes a run on this 2-core CPU, bf16)
set -euo pipefail
cd "$(dirname "$0")/.."
run() {  # name, then --set overrides
  local name=$1; shift
  local sets=()
  for s in "$@"; do sets+=(--set "$s"); done
  .venv/bin/python -m arc_ttt finetune --config configs/finetune-local.yaml --quiet \
    --set train.steps=50 --set eval.every_steps=50 --set eval.greedy_tasks=0 --set output.dir=runs/choice-$name \
    "${sets[@]}"
  .venv/bin/python - "$name" <<'PY'
import json, sys
c = json.load(open(f"runs/choice-{sys.argv[1]}/finetune.json"))
a = c["holdout"]["after"]
print(json.dumps({"name": sys.argv[1], "lora_r": c["lora"]["r"], "lr": c["train"]["lr"], "tokens": c["tokens"],
                  "seconds": c["train_seconds"], **{k: a[k] for k in ("nll", "nll_identity", "dev_nll", "dev_nll_identity")}}))
PY
}
run r16-lr3e-4 lora.r=16 train.lr=3e-4
run r16-lr1e-3 lora.r=16 train.lr=1e-3
run r64-lr3e-4 lora.r=64 train.lr=3e-4
