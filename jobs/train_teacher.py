"""Train the teacher (2D + 3D skeleton images with language) on Ray Train + DeepSpeed.

Examples:
  python jobs/train_teacher.py --data runs/quickstart/dataset --output runs/quickstart
  ray job submit --working-dir . -- python jobs/train_teacher.py --data s3://b/ds --output s3://b/run \\
      --num-workers 4 --use-gpu

Writes OUTPUT/teacher/ (config.json, model.safetensors, tokenizer). Checkpoints live under
OUTPUT/ray/teacher; running the same command again resumes from the last finished epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from common import LOG, add_num_cpus, init_ray, refuse_without_gpus, setup_logging
from ray.train import TrainingFailedError

from p2l3d_core import storage
from p2l3d_core.dataset.shards import read_manifest, training_splits
from p2l3d_core.models.config import preset
from p2l3d_core.models.encoders import POSE_INPUTS
from p2l3d_core.training.config import LR_SCHEDULES, ZERO_STAGES, TrainConfig
from p2l3d_core.training.runner import run_stage, with_corpus_vocab


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Local paths are made absolute as they are parsed: Ray workers run in other directories.
    p.add_argument("--data", required=True, type=storage.absolute,
                   help="rendered dataset (local folder or s3://)")
    p.add_argument("--output", required=True, type=storage.absolute,
                   help="run folder (local folder or s3://)")
    p.add_argument("--model", default="small", choices=["tiny", "small", "base"], help="model size preset")
    p.add_argument("--pose-input", default="image+keypoints", choices=list(POSE_INPUTS),
                   help="what the 2D branch reads")
    p.add_argument("--pose-input-3d", default="image+keypoints", choices=list(POSE_INPUTS),
                   help="what the 3D branch reads: the rendered 3D views and/or the 3D joints")
    p.add_argument("--labelled-fraction", type=float, default=1.0,
                   help="share of the training split with language (the teacher learns from it)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=64, help="per worker and step")
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--lr-schedule", default="constant", choices=LR_SCHEDULES,
                   help="constant, or cosine (5%% linear warm-up, then annealed to 1%% of --lr)")
    p.add_argument("--zero-stage", type=int, default=2, choices=ZERO_STAGES,
                   help="DeepSpeed ZeRO stage (default 2); stage 3 is not supported "
                        "(why: p2l3d_core/training/config.py)")
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--cpus-per-worker", type=float, default=1.0)
    p.add_argument("--use-gpu", action=argparse.BooleanOptionalAction, default=False,
                   help="one GPU per worker, bf16")
    p.add_argument("--seed", type=int, default=0)
    add_num_cpus(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    try:  # the arguments first (the model waits for the dataset's image size), then the data
        cfg = TrainConfig(epochs=args.epochs, labelled_fraction=args.labelled_fraction,
                          batch_size=args.batch_size, grad_accum=args.grad_accum, lr=args.lr,
                          lr_schedule=args.lr_schedule, zero_stage=args.zero_stage,
                          use_gpu=args.use_gpu, seed=args.seed)
        if args.num_workers < 1 or args.cpus_per_worker <= 0:
            raise ValueError(f"--num-workers must be >= 1 and --cpus-per-worker > 0, got "
                             f"{args.num_workers} and {args.cpus_per_worker}")
    except ValueError as err:
        LOG.error("invalid arguments: %s", err)
        return 2
    try:
        manifest = read_manifest(args.data)
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    image_size = manifest["config"]["image_size"]
    model = with_corpus_vocab(preset(args.model, image_size, args.pose_input, args.pose_input_3d),
                              args.data)
    cfg = dataclasses.replace(cfg, model=model)
    init_ray(num_cpus=args.num_cpus)
    if args.use_gpu and refuse_without_gpus(args.num_workers):
        return 2
    datasets = training_splits(args.data)
    LOG.info("teacher: %s model, %d epochs, %d workers, ZeRO-%d, data %s (%s)", args.model,
             args.epochs, args.num_workers, args.zero_stage, args.data, manifest["splits"])
    try:
        run_stage("teacher", cfg, datasets, args.output,
                  num_workers=args.num_workers, cpus_per_worker=args.cpus_per_worker, log=LOG.info)
    except TrainingFailedError as err:
        LOG.error("training failed: %s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
