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

from common import LOG, setup_logging

from p2l3d_core import storage
from p2l3d_core.evaluation.report import write_report
from p2l3d_core.evaluation.run import evaluate_run


def _named_set(text: str) -> tuple[str, str]:
    name, sep, uri = text.partition("=")
    if not sep or not name or not uri:
        raise argparse.ArgumentTypeError(f"--set wants NAME=DATASET_URI, got {text!r}")
    return name, uri


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, type=storage.absolute,
                   help="a run folder written by jobs/distill.py (local or s3://)")
    p.add_argument("--data", default=None, type=storage.absolute,
                   help="rendered dataset (default: RUN/dataset)")
    p.add_argument("--set", dest="sets", action="append", type=_named_set, default=[],
                   help="another rendered dataset to evaluate on, NAME=URI (repeatable)")
    p.add_argument("--eval-poses", type=int, default=1000,
                   help="poses drawn per evaluation set (0: all; default 1000)")
    p.add_argument("--latency-samples", type=int, default=30,
                   help="test poses captioned and questions answered per round, timed at batch 1 on one "
                        "thread (0: no latency)")
    p.add_argument("--latency-rounds", type=int, default=5,
                   help="rounds over the samples, all methods interleaved, order reversed each round")
    p.add_argument("--lifter-epochs", type=int, default=30)
    p.add_argument("--no-meteor", action="store_true", help="skip METEOR (it needs Java)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.latency_samples < 0 or args.latency_rounds < 1:
        p.error(f"--latency-samples must be >= 0 and --latency-rounds >= 1, got "
                f"{args.latency_samples} and {args.latency_rounds}")
    return args


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    run = args.run
    data = args.data or storage.join(run, "dataset")
    try:
        report = evaluate_run(run, data, extra_sets=dict(args.sets), eval_poses=args.eval_poses or None,
                              latency_samples=args.latency_samples, latency_rounds=args.latency_rounds,
                              meteor=not args.no_meteor,
                              lifter_epochs=args.lifter_epochs, seed=args.seed, log=LOG.info)
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    for path in write_report(storage.join(run, "report"), report):
        LOG.info("wrote %s", path)
    for target in report["targets"].values():
        LOG.info("%s %s: %.2f (threshold %.2f)", "MET   " if target["met"] else "MISSED",
                 target["target"], target["value"], target["threshold"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
