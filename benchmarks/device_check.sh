#!/usr/bin/env bash
# The GPU check, one call on a device machine (see benchmarks/device_kit.sh for the kit):
#   run(command="bash benchmarks/device_check.sh", carry=[".device_kit"], timeout_s=480)
# Training-step cost of the teacher and the distilled student on the GPU in bf16, for the
# `small` model at quickstart's batch (64) and the `base` model at the paper preset's (128, 32
# pool captions), with peak GPU memory. Without Ray and DeepSpeed (the machine lacks both):
# what a worker's model and loss code cost there, the paper preset's epochs estimated from it.
# Writes the JSON and the log under $OUT (or results/device/ here).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/device}
mkdir -p "$OUT"
KIT=${KIT:-.device_kit}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
  common=(--data "$KIT/dataset" --text-model "$KIT/text" --random-weights --device "$DEVICE"
          --labelled-fraction 0.1 --steps "${STEPS:-20}")
  "$PY" benchmarks/train_step.py "${common[@]}" --model small --batch-size 64 --pool-captions 16 --warm \
    --out "$OUT/train_step_small.json"
  "$PY" benchmarks/train_step.py "${common[@]}" --model base --batch-size 128 --pool-captions 32 \
    --warm --out "$OUT/train_step_base.json"
} 2>&1 | tee "$OUT/device_check.log"
