#!/usr/bin/env bash
# The GPU check, one run on a GPU machine with .device_kit/ beside the code (made by
# benchmarks/device_kit.sh); about 5 minutes on an H200 is the plan, not yet measured.
# Training-step cost of the teacher and the distilled student on the GPU in bf16, for the
# `small` model at quickstart's batch (64) and the `base` model at the paper preset's (128, 32
# pool captions), with peak GPU memory. Without Ray and DeepSpeed (the machine lacks both):
# what a worker's model and loss code cost there, the paper preset's epochs estimated from it.
# Writes the JSON and the log under $OUT (or benchmarks/results/device/). Stops at the first
# failure, with its exit status.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-benchmarks/results/device}
mkdir -p "$OUT"
KIT=${KIT:-.device_kit}
PY=${PY:-python3}
DEVICE=${DEVICE:-cuda}
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
  # What the check needs there, before any model is built: fail fast, naming what is missing.
  "$PY" -c "import cv2, pandas, pyarrow, safetensors, torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
  test -f "$KIT/dataset/manifest.json" || { echo "no $KIT/dataset: run benchmarks/device_kit.sh first"; exit 2; }
  common=(--data "$KIT/dataset" --text-model "$KIT/text" --random-weights --device "$DEVICE"
          --labelled-fraction 0.1 --steps "${STEPS:-20}")
  "$PY" benchmarks/train_step.py "${common[@]}" --model small --batch-size 64 --pool-captions 16 --warm \
    --out "$OUT/train_step_small.json"
  "$PY" benchmarks/train_step.py "${common[@]}" --model base --batch-size 128 --pool-captions 32 \
    --warm --out "$OUT/train_step_base.json"
} 2>&1 | tee "$OUT/device_check.log"
