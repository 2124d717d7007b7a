"""The main job: render a dataset (unless --data names one), train the teacher on 2D + 3D
images with language, distil the 2D-only student, train the baselines, and evaluate them all.

Examples:
  python jobs/distill.py --preset quickstart --output runs/quickstart   # minutes on 2 CPU cores
  python jobs/distill.py --preset study --output runs/study             # the full comparison: hours
  ray job submit --working-dir . -- python jobs/distill.py --preset paper --output s3://b/run
  python jobs/distill.py --stages student,evaluate --output runs/quickstart   # redo some stages

Stages: render, teacher, student (and its extra seeds), baselines (the preset's: baseline_2d
with its seeds, baseline_2d_no3d, coords_2d), curve (teacher, student and baseline_2d at other
labelled fractions), evaluate (the test split and every --real set, as jobs/evaluate.py does;
ends with the main table). OUTPUT holds dataset/ (if rendered here), teacher/, student/, seeds/,
baselines/, curve/, real/, report/, ray/ (checkpoints) and text_features/ (the frozen text
encoder's sentence features, shared by the trainings). Running the same command again resumes
each training from its last finished epoch; finished models are kept unless --retrain.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
import time

from common import (
    LOG,
    add_num_cpus,
    check_set_names,
    init_ray,
    location,
    print_summary,
    refuse_unreachable,
    refuse_without_gpus,
    setup_logging,
)
from ray.train import TrainingFailedError

from p2l3d_core import storage
from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.pipeline import ConfigMismatch, render_dataset
from p2l3d_core.dataset.shards import check_shards, read_manifest, training_splits
from p2l3d_core.evaluation.run import evaluate_to_folder, evaluation_inputs, finished_report
from p2l3d_core.models.config import preset as model_preset
from p2l3d_core.poses.sources import count_records
from p2l3d_core.training.plan import STAGES, TRAINING_STAGES, PlannedRun, is_trained, plan_runs
from p2l3d_core.training.presets import add_preset_arguments, preset_from_args
from p2l3d_core.training.runner import run_stage, with_corpus_vocab


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    # Local paths are made absolute as they are parsed: Ray workers run in other directories.
    p.add_argument("--output", required=True, type=location,
                   help="run folder: local path or s3://bucket/prefix")
    p.add_argument("--data", default=None, type=location,
                   help="an existing rendered dataset (skips rendering)")
    p.add_argument("--stages", default=",".join(STAGES),
                   help=f"comma-separated subset of {','.join(STAGES)} (default: all)")
    p.add_argument("--real", action="append", default=[], metavar="NAME=SOURCE",
                   help="real 3D data to evaluate on as well, rendered like the training set, e.g. "
                        "h36m=h36m:FILE.npz or walk=bvh:FILE.bvh@walking (repeatable)")
    p.add_argument("--retrain", action="store_true",
                   help="train models again even where a finished one exists")
    p.add_argument("--seed", type=int, default=0)
    add_num_cpus(p)
    add_preset_arguments(p.add_argument_group(
        "preset", "the run's scale; each flag overrides one field of the preset file"))
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
        p = preset_from_args(args)
        dataset_cfg = dataclasses.replace(p.dataset, seed=args.seed)
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
    # Every input named on the command line is checked before the first training, not after.
    problem = check_set_names([name for name, _ in real_sets], "--real")
    try:  # read whole: a damaged file is named now, not after hours of training
        for _, source in real_sets:
            count_records(source)
    except (ValueError, FileNotFoundError) as err:
        problem = problem or f"--real: {err}"
    if problem:
        LOG.error("invalid arguments: %s", problem)
        return 2
    if refuse_unreachable(args.output, args.data):
        return 2
    data = args.data or storage.join(args.output, "dataset")
    LOG.info("preset %s: %s", p.name, p.description or "(no description)")
    init_ray(num_cpus=args.num_cpus)
    if (p.train.use_gpu and set(stages) & set(TRAINING_STAGES)
            and refuse_without_gpus(p.num_workers)):
        return 2

    try:  # every fault of the data is one line, exit 2, before a training starts
        if "render" in stages and not args.data:
            render_dataset(data, dataset_cfg, log=LOG.info)
        manifest = read_manifest(data)
        check_shards(data)  # a missing or cut shard is named now, not in a Ray task
        model = with_corpus_vocab(model_preset(p.model, manifest["config"]["image_size"],
                                               p.pose_input, p.pose_input_3d), data)
        runs = plan_runs(p, stages, model, args.output, args.seed)
        todo = {r.name for r in runs if args.retrain or not is_trained(args.output, r.name)}
        datasets = training_splits(data) if todo else {}  # read once for every training
    except ConfigMismatch as err:
        LOG.error("%s (for jobs/distill.py: use another --output, or delete %s)", err, data)
        return 2
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    if runs:
        code = _train(p, runs, todo, datasets, data, manifest, args)
        if code:
            return code
    if "evaluate" not in stages:
        return 0
    extra = {}
    for name, source in real_sets:
        uri = storage.join(args.output, "real", name)
        render_dataset(uri, DatasetConfig(num_poses=100_000, source=source, seed=args.seed,
                                          image_size=manifest["config"]["image_size"]),
                       log=LOG.info)
        extra[name] = uri
    try:
        inputs = evaluation_inputs(args.output, data, p.evaluate, extra, args.seed)
        report = None if args.retrain else finished_report(args.output, inputs)
        if report is not None:
            LOG.info("evaluation: finished earlier with these models and settings, kept "
                     "(report/report.json; --retrain, or jobs/evaluate.py, evaluates again)")
            written = storage.list_files(storage.join(args.output, "report"))
        else:
            report, written = evaluate_to_folder(args.output, data, p.evaluate,
                                                 extra_sets=extra, seed=args.seed, log=LOG.info)
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    print_summary(report, written, args.output, data)
    return 0


def _train(p, runs: list[PlannedRun], todo: set[str], datasets: dict, data: str,
           manifest: dict, args: argparse.Namespace) -> int:
    """Train the planned models named in ``todo`` (the others are finished and kept), adding
    each to the run's training report; ``datasets``: the splits, read once for this job."""
    # A re-run adds to the training report: models kept from an earlier run keep their entries.
    report_uri = storage.join(args.output, "report", "training.json")
    report: dict = storage.read_json(report_uri) if storage.exists(report_uri) else {}
    report.update({"preset": p.name, "settings": p.to_dict(), "data": data,
                   "splits": manifest["splits"]})
    started = time.monotonic()
    try:
        for i, run in enumerate(runs, 1):
            cfg = run.config
            if run.name not in todo:
                LOG.info("== %s: finished earlier, kept (training %d of %d; --retrain trains it "
                         "again)", run.name, i, len(runs))
                continue
            elapsed = datetime.timedelta(seconds=round(time.monotonic() - started))
            LOG.info("== %s: %d epochs, %d workers, ZeRO-%d, %s model (%s), %.1f%% of train "
                     "labelled%s%s (training %d of %d, %s into this job's trainings)", run.name,
                     cfg.epochs, p.num_workers, cfg.zero_stage, p.model,
                     cfg.model.pose_input, 100 * cfg.labelled_fraction,
                     ", distilled" if cfg.teacher_path else "",
                     ", 2D-measured language" if cfg.language == "2d" else "", i, len(runs),
                     elapsed)
            report[run.name] = run_stage(run.stage, cfg, datasets, args.output, name=run.name,
                                         num_workers=p.num_workers, placement=p.placement,
                                         log=LOG.info)
    except TrainingFailedError as err:
        LOG.error("training failed: %s", err)
        return 1
    finally:
        storage.write_json(report_uri, json.loads(json.dumps(report, default=str)))
        LOG.info("training report: %s", report_uri)
    return 0


if __name__ == "__main__":
    sys.exit(main())
