#!/usr/bin/env bash
# The one-call GPU fine-tuning run, on a machine with torch, transformers and peft but not the kit installed (a lent
# accelerator, a bare cloud box): the packed folder and the repository's src/ are all it needs, plus the `gguf`
# wheel when the weights are the embedded GGUF (carried in .whl/). Prepared here by
#   .venv/bin/python -m arc_ttt gpu-pack --config configs/finetune-gpu.yaml --out build/gpu-run --tokens 2e7
#   mkdir -p .whl && cp "$(find / -name 'gguf-0.19.0-py3-none-any.whl' 2>/dev/null | head -1)" .whl/
# then, there, from the repository's root:
#   bash benchmarks/training/gpu_finetune.sh build/gpu-run OUT_DIR [MAX_SECONDS] [extra gpu-run flags]
# The weights travel in parts; a copy limited to 64 MiB a call takes part-00 in a first call and the rest in a
# second one (docs/finetuning.md, "One call on a GPU").
set -euo pipefail
PACK=${1:?packed folder}; OUT=${2:?output folder}; MAX=${3:-360}; shift $(( $# < 3 ? $# : 3 ))
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/arc-site .whl/*.whl
  export PYTHONPATH=/tmp/arc-site:${PYTHONPATH:-}
fi
export PYTHONPATH=src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi: running on $(uname -m)"
python3 -c "import torch, transformers, peft; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'cuda', torch.cuda.is_available())"
mkdir -p "$OUT"
python3 -m arc_ttt gpu-run --pack "$PACK" --out "$OUT" --max-seconds "$MAX" "$@" 2>&1 | grep -v "it/s]" | tee "$OUT/gpu_run.log"
