"""The main job: render a dataset (unless --data names one), train the teacher on 2D + 3D
images with language, distil the 2D-only student, train the baselines, and evaluate them all.

Examples:
  python jobs/distill.py --preset quickstart --output runs/quickstart
  ray job submit --working-dir . -- python jobs/distill.py --preset paper --output s3://b/run --use-gpu
  python jobs/distill.py --stages student,evaluate --output runs/quickstart   # redo some stages

Stages: render, teacher, student (and its extra seeds), baselines (baseline_2d with its seeds,
baseline_2d_no3d, coords_2d), curve (teacher, student and baseline_2d at other labelled
fractions), evaluate (jobs/evaluate.py on the test split). OUTPUT holds dataset/ (if rendered
here), teacher/, student/, seeds/, baselines/, curve/, report/, ray/ (checkpoints) and
text_features/ (the frozen text encoder's sentence features, shared by the trainings). Running
the same command again resumes each training from its last finished epoch; finished models are
kept unless --retrain.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time

from common import LOG, add_num_cpus, init_ray, refuse_without_gpus, setup_logging
from ray.train import TrainingFailedError

from p2l3d_core import storage
from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.pipeline import render_dataset
from p2l3d_core.dataset.shards import read_manifest, training_splits
from p2l3d_core.models.config import preset as model_preset
from p2l3d_core.models.encoders import POSE_INPUTS
from p2l3d_core.training.config import LR_SCHEDULES, ZERO_STAGES, TrainConfig
from p2l3d_core.training.presets import PRESETS, get_preset
from p2l3d_core.training.runner import run_stage, with_corpus_vocab

STAGES = ("render", "teacher", "student", "baselines", "curve", "evaluate")
TRAINING_STAGES = {"teacher", "student", "baselines", "curve"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Local paths are made absolute as they are parsed: Ray workers run in other directories.
    p.add_argument("--output", required=True, type=storage.absolute,
                   help="run folder: local path or s3://bucket/prefix")
    p.add_argument("--preset", default="quickstart", choices=sorted(PRESETS),
                   help="scale of the run (default quickstart: 15 models, hours on 2 CPU cores; "
                        "smoke: seconds, tiny models)")
    p.add_argument("--data", default=None, type=storage.absolute,
                   help="an existing rendered dataset (skips rendering)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated subset of {','.join(STAGES)} (default: all)")
    p.add_argument("--num-poses", type=int, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--teacher-epochs", type=int, default=None)
    p.add_argument("--student-epochs", type=int, default=None)
    p.add_argument("--baseline-epochs", type=int, default=None,
                   help="epochs of the labelled-only baselines (they see fewer rows an epoch)")
    p.add_argument("--batch-size", type=int, default=None, help="per worker and step")
    p.add_argument("--labelled-fraction", type=float, default=None,
                   help="share of the training split with language; the rest is the unlabelled pool")
    p.add_argument("--num-workers", type=int, default=None)
    p.add_argument("--use-gpu", action=argparse.BooleanOptionalAction, default=None,
                   help="one GPU per worker, bf16 (default: the preset's; paper: on)")
    p.add_argument("--zero-stage", type=int, default=None, choices=ZERO_STAGES,
                   help="DeepSpeed ZeRO stage (default: the preset's, 2); stage 3 is not "
                        "supported (why: p2l3d_core/training/config.py)")
    p.add_argument("--lr-schedule", default=None, choices=LR_SCHEDULES,
                   help="learning rate of every training: constant (the preset default) or cosine "
                        "(5%% linear warm-up, then annealed to 1%% of the rate by the last step)")
    p.add_argument("--student-pose-input", default=None, choices=list(POSE_INPUTS),
                   help="what the student (and baseline_2d, baseline_2d_no3d) reads; default the "
                        "preset's, image+keypoints. 'keypoints': a keypoint network distilled from "
                        "the image teacher (coords_2d is then baseline_2d and is not trained twice)")
    for term, what in (("match", "cosine match to the teacher's fused embedding"),
                       ("rkd", "relational KD over the batch's texts"),
                       ("answer-kd", "the teacher's answer distributions on every row")):
        p.add_argument(f"--{term}-weight", type=float, default=None,
                       help=f"distilled student's weight of {what} (preset default 1)")
    p.add_argument("--pool-captions", type=int, default=None,
                   help="distilled student: unlabelled rows of each batch that also learn the "
                        "teacher's greedy caption of the pose (sequence-level distillation; "
                        "quickstart preset: 16 of 64)")
    p.add_argument("--seeds", type=int, default=None,
                   help="how many seeds student and baseline_2d are trained with (preset default)")
    p.add_argument("--eval-poses", type=int, default=None, help="test poses scored per method")
    p.add_argument("--real", action="append", default=[], metavar="NAME=SOURCE",
                   help="real 3D data to evaluate on as well, rendered like the training set, e.g. "
                        "h36m=h36m:FILE.npz or walk=bvh:FILE.bvh@walking (repeatable)")
    p.add_argument("--retrain", action="store_true",
                   help="train models again even where a finished one exists")
    p.add_argument("--seed", type=int, default=0)
    add_num_cpus(p)
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
                       baseline_epochs=args.baseline_epochs, batch_size=args.batch_size,
                       labelled_fraction=args.labelled_fraction,
                       num_workers=args.num_workers, use_gpu=args.use_gpu, zero_stage=args.zero_stage,
                       seeds=args.seeds, eval_poses=args.eval_poses,
                       student_pose_input=args.student_pose_input, match_weight=args.match_weight,
                       rkd_weight=args.rkd_weight, answer_kd_weight=args.answer_kd_weight,
                       pool_captions=args.pool_captions,
                       lr_schedule=args.lr_schedule)
        dataset_cfg = DatasetConfig(num_poses=p.num_poses, image_size=p.image_size, seed=args.seed)
    except ValueError as err:
        LOG.error("invalid arguments: %s", err)
        return 2
    real_sets = []
    for text in args.real:
        name, sep, source = text.partition("=")
        if not sep or not name or not source:
            LOG.error("--real wants NAME=SOURCE, got %r", text)
            return 2
        real_sets.append((name, source))
    data = args.data or storage.join(args.output, "dataset")
    init_ray(num_cpus=args.num_cpus)
    if p.use_gpu and set(stages) & TRAINING_STAGES and refuse_without_gpus(p.num_workers):
        return 2

    if "render" in stages and not args.data:
        render_dataset(data, dataset_cfg, log=LOG.info)
    try:
        manifest = read_manifest(data)
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    model = with_corpus_vocab(model_preset(p.model, manifest["config"]["image_size"],
                                           p.pose_input, p.pose_input_3d), data)
    datasets = training_splits(data)  # read once for every training of this job
    # A re-run adds to the training report: models kept from an earlier run keep their entries.
    report_uri = storage.join(args.output, "report", "training.json")
    report: dict = storage.read_json(report_uri) if storage.exists(report_uri) else {}
    report.update({"preset": args.preset, "settings": p.__dict__, "data": data,
                   "splits": manifest["splits"]})
    try:
        runs = plan_runs(p, stages, model, args.output, args.seed)
        started = time.monotonic()
        for i, (name, stage, cfg) in enumerate(runs, 1):
            if not args.retrain and _finished(args.output, name):
                LOG.info("== %s: finished earlier, kept (training %d of %d; --retrain trains it "
                         "again)", name, i, len(runs))
                continue
            elapsed = datetime.timedelta(seconds=round(time.monotonic() - started))
            LOG.info("== %s: %d epochs, %d workers, ZeRO-%d, %s model (%s), %.1f%% of train "
                     "labelled%s%s (training %d of %d, %s into this job's trainings)", name,
                     cfg.epochs, p.num_workers, cfg.zero_stage, p.model,
                     cfg.model.pose_input, 100 * cfg.labelled_fraction,
                     ", distilled" if cfg.teacher_path else "",
                     ", 2D-measured language" if cfg.language == "2d" else "", i, len(runs), elapsed)
            report[name] = run_stage(stage, cfg, datasets, args.output, name=name,
                                     num_workers=p.num_workers, log=LOG.info)
    except TrainingFailedError as err:
        LOG.error("training failed: %s", err)
        return 1
    storage.write_json(report_uri, json.loads(json.dumps(report, default=str)))
    LOG.info("training report: %s", report_uri)
    if "evaluate" in stages:
        import evaluate

        extra = []
        for name, source in real_sets:
            uri = storage.join(args.output, "real", name)
            render_dataset(uri, DatasetConfig(num_poses=100_000, source=source, seed=args.seed,
                                              image_size=manifest["config"]["image_size"]), log=LOG.info)
            extra += ["--set", f"{name}={uri}"]
        return evaluate.main(["--run", args.output, "--data", data, "--seed", str(args.seed),
                              "--eval-poses", str(p.eval_poses), *extra])
    return 0


def _finished(output: str, name: str) -> bool:
    return storage.exists(storage.join(output, *name.split("/"), "config.json"))


def plan_runs(p, stages: list[str], model, output: str, seed: int) -> list[tuple[str, str, TrainConfig]]:
    """``(name, stage, config)`` of every training the chosen stages need, in order (a
    teacher before the students distilled from it)."""
    common = dict(model=model, batch_size=p.batch_size, lr=p.lr, lr_schedule=p.lr_schedule,
                  zero_stage=p.zero_stage,
                  use_gpu=p.use_gpu, labelled_fraction=p.labelled_fraction, lm_weight=p.lm_weight)
    student_model = dataclasses.replace(model, pose_input=p.student_input)
    keypoints_only = dataclasses.replace(model, pose_input="keypoints")

    def teacher(fraction: float, prefix: str = "") -> tuple[str, str, TrainConfig]:
        return (prefix + "teacher", "teacher", TrainConfig(
            epochs=p.teacher_epochs, seed=seed, **{**common, "labelled_fraction": fraction}))

    distill = dict(match_weight=p.match_weight, rkd_weight=p.rkd_weight,
                   answer_kd_weight=p.answer_kd_weight, pool_captions=p.pool_captions)

    def student(name: str, s: int, fraction: float, teacher_dir: str | None, **kw):
        epochs = p.student_epochs if teacher_dir else p.baseline_epochs
        return (name, "student", TrainConfig(epochs=epochs, seed=seed + s,
                                             teacher_path=teacher_dir,
                                             **{**common, **(distill if teacher_dir else {}),
                                                "model": student_model,
                                                "labelled_fraction": fraction, **kw}))

    teacher_dir = storage.join(output, "teacher")
    runs = []
    if "teacher" in stages:
        runs.append(teacher(p.labelled_fraction))
    if "student" in stages:
        runs += [student("student" if s == 0 else f"seeds/student-s{s}", s, p.labelled_fraction,
                         teacher_dir) for s in range(p.seeds)]
    if "baselines" in stages:
        runs += [student("baselines/baseline_2d" if s == 0 else f"seeds/baseline_2d-s{s}", s,
                         p.labelled_fraction, None) for s in range(p.seeds)]
        runs.append(student("baselines/baseline_2d_no3d", 0, p.labelled_fraction, None, language="2d"))
        if student_model != keypoints_only:  # else baseline_2d is the keypoint network already
            runs.append(student("baselines/coords_2d", 0, p.labelled_fraction, None,
                                model=keypoints_only))
    if "curve" in stages:
        for fraction in p.curve:
            prefix = f"curve/f{fraction:g}/"
            runs.append(teacher(fraction, prefix))
            runs.append(student(prefix + "student", 0, fraction, storage.join(output, prefix + "teacher")))
            runs.append(student(prefix + "baselines/baseline_2d", 0, fraction, None))
    return runs


if __name__ == "__main__":
    sys.exit(main())
