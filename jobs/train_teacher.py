"""Train the teacher (2D + 3D skeleton images with language) on Ray Train + DeepSpeed.

Examples:
  python jobs/train_teacher.py --data runs/quickstart/dataset --output runs/quickstart
  python jobs/train_teacher.py --preset study --data runs/study/dataset --output runs/study \\
      --epochs 30
  ray job submit --working-dir . -- python jobs/train_teacher.py --data s3://b/ds \\
      --output s3://b/run --num-workers 4 --use-gpu

Writes OUTPUT/teacher/ (config.json, model.safetensors, tokenizer). Checkpoints live under
OUTPUT/ray/teacher; running the same command again resumes from the last finished epoch.
"""

from __future__ import annotations

import argparse
import sys

from common import (
    LOG,
    add_num_cpus,
    init_ray,
    location,
    refuse_unreachable,
    refuse_without_gpus,
    setup_logging,
)
from ray.train import TrainingFailedError

from p2l3d_core.dataset.shards import check_shards, read_manifest, training_splits
from p2l3d_core.models.config import preset
from p2l3d_core.training.plan import plan_runs
from p2l3d_core.training.presets import add_preset_arguments, preset_from_args
from p2l3d_core.training.runner import run_stage, with_corpus_vocab

TEACHER_FLAGS = ["model", "pose_input", "pose_input_3d", "labelled_fraction", "teacher_epochs",
                 "batch_size", "grad_accum", "lr", "lr_schedule", "zero_stage", "num_workers",
                 "placement", "use_gpu"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # Local paths are made absolute as they are parsed: Ray workers run in other directories.
    p.add_argument("--data", required=True, type=location,
                   help="rendered dataset (local folder or s3://)")
    p.add_argument("--output", required=True, type=location,
                   help="run folder (local folder or s3://)")
    p.add_argument("--cpus-per-worker", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    add_num_cpus(p)
    add_preset_arguments(p.add_argument_group(
        "preset", "the teacher's settings come from the preset (as in jobs/distill.py); each "
                  "flag overrides one field"), TEACHER_FLAGS, rename={"teacher_epochs": "epochs"})
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    try:  # the arguments first (the model waits for the dataset's image size), then the data
        p = preset_from_args(args)
        if args.cpus_per_worker <= 0:
            raise ValueError(f"--cpus-per-worker must be > 0, got {args.cpus_per_worker}")
    except ValueError as err:
        LOG.error("invalid arguments: %s", err)
        return 2
    if refuse_unreachable(args.data, args.output):
        return 2
    try:
        manifest = read_manifest(args.data)
        check_shards(args.data)  # a missing or cut shard is named now, not in a Ray task
        image_size = manifest["config"]["image_size"]
        model = with_corpus_vocab(preset(p.model, image_size, p.pose_input, p.pose_input_3d),
                                  args.data)
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    [teacher] = plan_runs(p, ["teacher"], model, args.output, args.seed)
    init_ray(num_cpus=args.num_cpus)
    if p.train.use_gpu and refuse_without_gpus(p.num_workers):
        return 2
    try:
        datasets = training_splits(args.data)
    except ValueError as err:  # an undecodable image, a shard of other rows than listed
        LOG.error("%s", err)
        return 2
    LOG.info("teacher (preset %s): %s model, %d epochs, %d workers, ZeRO-%d, data %s (%s)", p.name,
             p.model, teacher.config.epochs, p.num_workers, teacher.config.zero_stage, args.data,
             manifest["splits"])
    try:
        run_stage(teacher.stage, teacher.config, datasets, args.output, name=teacher.name,
                  num_workers=p.num_workers, cpus_per_worker=args.cpus_per_worker,
                  placement=p.placement, log=LOG.info)
    except TrainingFailedError as err:
        LOG.error("training failed: %s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
