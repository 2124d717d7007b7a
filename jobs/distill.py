"""The main job: render a dataset (unless --data names one), train the teacher on 2D + 3D
images with language, distil the 2D-only student, and write a training report.

Examples:
  python jobs/distill.py --preset quickstart --output runs/quickstart
  ray job submit --working-dir . -- python jobs/distill.py --preset paper --output s3://b/run --use-gpu
  python jobs/distill.py --stages student --output runs/quickstart     # redo the student only

OUTPUT holds dataset/ (if rendered here), teacher/, student/, report/training.json, and ray/
(checkpoints). Running the same command again resumes each stage from its last finished epoch.
Evaluation against the baselines is not part of this job yet.
"""

from __future__ import annotations

import argparse
import json
import sys

from common import LOG, init_ray, setup_logging
from ray.train import TrainingFailedError

from p2l3d_core import storage
from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.pipeline import render_dataset
from p2l3d_core.dataset.shards import ray_splits, read_manifest
from p2l3d_core.models.config import preset as model_preset
from p2l3d_core.training.config import TrainConfig
from p2l3d_core.training.presets import PRESETS, get_preset
from p2l3d_core.training.runner import run_stage

STAGES = ("render", "teacher", "student")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, help="run folder: local path or s3://bucket/prefix")
    p.add_argument("--preset", default="quickstart", choices=sorted(PRESETS),
                   help="scale of the run (default quickstart: minutes on 2 CPU cores)")
    p.add_argument("--data", default=None, help="an existing rendered dataset (skips rendering)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated subset of {','.join(STAGES)} (default: all)")
    p.add_argument("--num-poses", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--teacher-epochs", type=int, default=None)
    p.add_argument("--student-epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="per worker and step")
    p.add_argument("--labelled-fraction", type=float, default=None,
                   help="share of the training split with language; the rest is the unlabelled pool")
    p.add_argument("--num-workers", type=int, default=None)
    p.add_argument("--use-gpu", action="store_true", default=None)
    p.add_argument("--zero-stage", type=int, default=None, choices=[0, 1, 2])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray instance")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        LOG.error("unknown stage(s) %s: choose from %s", unknown, ", ".join(STAGES))
        return 2
    try:
        p = get_preset(args.preset, num_poses=args.num_poses, image_size=args.image_size,
                       teacher_epochs=args.teacher_epochs, student_epochs=args.student_epochs,
                       batch_size=args.batch_size, labelled_fraction=args.labelled_fraction,
                       num_workers=args.num_workers, use_gpu=args.use_gpu, zero_stage=args.zero_stage)
        dataset_cfg = DatasetConfig(num_poses=p.num_poses, image_size=p.image_size, seed=args.seed)
    except ValueError as err:
        LOG.error("invalid arguments: %s", err)
        return 2
    # Absolute local paths: the teacher folder is read by training workers in other directories.
    args.output = storage.absolute(args.output)
    data = storage.absolute(args.data) if args.data else storage.join(args.output, "dataset")
    init_ray(num_cpus=args.num_cpus)

    if "render" in stages and not args.data:
        render_dataset(data, dataset_cfg, log=LOG.info)
    try:
        manifest = read_manifest(data)
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    model = model_preset(p.model, manifest["config"]["image_size"])
    splits = ray_splits(data)
    datasets = {"train": splits["train"], "val": splits["val"]}
    common = dict(model=model, batch_size=p.batch_size, lr=p.lr, zero_stage=p.zero_stage,
                  use_gpu=p.use_gpu, seed=args.seed, labelled_fraction=p.labelled_fraction)
    report: dict = {"preset": args.preset, "settings": p.__dict__, "data": data,
                    "splits": manifest["splits"]}
    teacher_dir = storage.join(args.output, "teacher")
    for stage in ("teacher", "student"):
        if stage not in stages:
            continue
        epochs = p.teacher_epochs if stage == "teacher" else p.student_epochs
        cfg = TrainConfig(epochs=epochs, teacher_path=teacher_dir if stage == "student" else None,
                          **common)
        LOG.info("== %s: %d epochs, %d workers, ZeRO-%d, %s model, %.0f%% of train labelled", stage,
                 epochs, p.num_workers, p.zero_stage, p.model, 100 * p.labelled_fraction)
        try:
            report[stage] = run_stage(stage, cfg, datasets, args.output, num_workers=p.num_workers,
                                      log=LOG.info)
        except TrainingFailedError as err:
            LOG.error("%s training failed: %s", stage, err)
            return 1
    storage.write_json(storage.join(args.output, "report", "training.json"),
                       json.loads(json.dumps(report, default=str)))
    LOG.info("report: %s", storage.join(args.output, "report", "training.json"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
