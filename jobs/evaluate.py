"""Evaluate a training run against the baselines: VQA accuracy (overall, per question family,
needs_depth), BLEU-1..4 / METEOR / ROUGE-L / CIDEr, retrieval R@1/5/10 and latency, for every
method the run holds plus the lifter pipeline and the rules on true 3D.

Examples:
  python jobs/evaluate.py --run runs/quickstart
  python jobs/evaluate.py --run runs/quickstart --set h36m=runs/h36m-rendered --eval-poses 500
  python jobs/evaluate.py --run s3://bucket/run --data s3://bucket/dataset

Writes RUN/report/report.json (methods.<name>.<metric>), report.md and PNG charts. Runs in
this process on the CPU (the models are small); no Ray needed.
"""

from __future__ import annotations

import argparse
import sys

from common import LOG, check_set_names, location, print_summary, refuse_unreachable, setup_logging

from p2l3d_core import storage
from p2l3d_core.config import EvalSettings
from p2l3d_core.evaluation.run import evaluate_to_folder


def _named_set(text: str) -> tuple[str, str]:
    name, sep, uri = text.partition("=")
    if not sep or not name or not uri:
        raise argparse.ArgumentTypeError(f"--set wants NAME=DATASET_URI, got {text!r}")
    return name, uri


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    defaults = EvalSettings()
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=location,
                   help="a run folder written by jobs/distill.py (local or s3://)")
    p.add_argument("--data", default=None, type=location,
                   help="rendered dataset (default: RUN/dataset)")
    p.add_argument("--set", dest="sets", action="append", type=_named_set, default=[],
                   help="another rendered dataset to evaluate on, NAME=URI (repeatable)")
    p.add_argument("--eval-poses", type=int, default=defaults.eval_poses,
                   help=f"poses drawn per evaluation set (0: all; default {defaults.eval_poses})")
    p.add_argument("--latency-samples", type=int, default=defaults.latency_samples,
                   help="test poses captioned and questions answered per round, timed at batch 1 "
                        f"on one thread (0: no latency; default {defaults.latency_samples})")
    p.add_argument("--latency-rounds", type=int, default=defaults.latency_rounds,
                   help="rounds over the samples, all methods interleaved, order reversed each "
                        f"round (default {defaults.latency_rounds})")
    p.add_argument("--lifter-epochs", type=int, default=defaults.lifter_epochs,
                   help="training of the 2D->3D lifter baseline "
                        f"(default {defaults.lifter_epochs})")
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (it needs Java)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    problem = check_set_names([name for name, _ in args.sets], "--set")
    if problem:
        p.error(problem)
    try:
        args.settings = EvalSettings(eval_poses=args.eval_poses or None,
                                     latency_samples=args.latency_samples,
                                     latency_rounds=args.latency_rounds,
                                     lifter_epochs=args.lifter_epochs, meteor=not args.no_meteor)
    except ValueError as err:
        p.error(str(err))
    return args


def _check_weights(run: str) -> None:
    """Refuse a run whose models' ``model.safetensors`` is cut short or damaged, naming the file.
    Why here: the evaluation loads each model only after reading every set and training the
    lifter (minutes); each file's header is read now, in well under a second."""
    from p2l3d_core.models.io import check_weights
    from p2l3d_core.training.plan import curve_fractions, find_models

    for fraction in [None, *curve_fractions(run)]:
        for paths in find_models(run, fraction).values():
            for path in paths:
                check_weights(storage.join(path, "model.safetensors"))


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    data = args.data or storage.join(args.run, "dataset")
    if refuse_unreachable(args.run, data, *(uri for _, uri in args.sets)):
        return 2
    try:
        _check_weights(args.run)
        report, written = evaluate_to_folder(args.run, data, args.settings,
                                             extra_sets=dict(args.sets), seed=args.seed,
                                             log=LOG.info)
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    for path in written:
        LOG.info("wrote %s", path)
    print_summary(report, written, args.run, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
