"""Caption every person in an archive of photos and videos with a trained student, on Ray Data:
one Parquet row per person per photo or sampled frame, with answers to your questions.

Examples:
  python jobs/batch_caption.py --model runs/quickstart/student --input ../shared/data/images \\
      --output runs/captions --overlays runs/captions/overlays
  python jobs/batch_caption.py --model s3://b/run/student --input s3://b/photos \\
      --output s3://b/captions --question "Is the left knee bent?" --num-workers 8
  ray job submit --working-dir . -- python jobs/batch_caption.py --model s3://b/run/student \\
      --input s3://b/photos --output s3://b/captions

Input: a folder or one file, local or s3:// (S3 settings from AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), listed recursively: photos (jpg, jpeg,
png, webp, bmp) and videos (mp4, avi, mov, mkv; every K-th frame, people tracked). Any other file
gets an error row, as does an unreadable one; a photo with nobody in it gets a "no person found"
row. The job carries on either way.

Output: OUTPUT/parts/*.parquet (source, frame, person, bbox, keypoints, score, caption, answers,
error, model), OUTPUT/run.json and OUTPUT/summary.json. Running the same command again captions
only what is missing, also after the job was killed. Another model, other questions or another
stride into the same output is refused unless --on-change separate (then OUTPUT/runs/<id>/).
"""

from __future__ import annotations

import argparse
import sys

from common import LOG, at_least_one, init_ray, location, refuse_unreachable, setup_logging

from p2l3d_core.inference.batch import CaptionJob, caption_archive


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=location,
                   help="a student's model folder (local or s3://)")
    p.add_argument("--input", required=True, help="folder or file of photos and videos "
                   "(local or s3://)")
    p.add_argument("--output", required=True, type=location, help="where rows go (local or s3://)")
    p.add_argument("--question", action="append", default=[], metavar="Q",
                   help="a question to ask about every person (repeatable)")
    p.add_argument("--video-stride", type=at_least_one, default=5, metavar="K",
                   help="caption every K-th frame of a video (default 5)")
    p.add_argument("--overlays", type=location, default=None, metavar="PATH",
                   help="also write each photo and sampled frame with the people drawn")
    p.add_argument("--num-workers", type=at_least_one, default=None, metavar="W",
                   help="exactly W actors, each with the model loaded once (default: a pool that "
                        "grows with the queue up to the cluster's CPUs)")
    p.add_argument("--batch-size", type=at_least_one, default=16, metavar="B",
                   help="photos an actor captions in one pass and writes as one part (default 16)")
    p.add_argument("--use-gpu", action="store_true", help="one GPU an actor")
    p.add_argument("--on-change", choices=["refuse", "separate"], default="refuse",
                   help="when OUTPUT holds rows of another model, questions or stride: refuse "
                        "(default) or write this run to OUTPUT/runs/<id>")
    p.add_argument("--pose-models", default=None, metavar="PATH",
                   help="folder (or s3://) of the pose estimator's files (default: the cache)")
    p.add_argument("--num-cpus", type=at_least_one, default=None,
                   help="CPUs of a local Ray instance (default: the cores + 2)")
    args = p.parse_args(argv)
    from p2l3d_core import storage

    try:  # a folder or one file (``location`` takes folders only)
        args.input = storage.absolute(args.input)
    except ValueError as err:
        p.error(f"--input: {err}")
    return args


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    from p2l3d_core import storage
    from p2l3d_core.inference.asking import check_question
    from p2l3d_core.inference.images import BadInput
    from p2l3d_core.models.io import check_weights, read_config

    try:
        for k, q in enumerate(args.question):
            check_question(q, k)
        if not args.model.startswith("s3://"):
            read_config(args.model)
    except (BadInput, FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    if refuse_unreachable(args.model, args.input, args.output, args.overlays):
        return 2
    try:  # a cut model.safetensors killed every actor as it loaded the model, in a traceback
        check_weights(storage.join(args.model, "model.safetensors"))  # the header only
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    init_ray(num_cpus=args.num_cpus)
    job = CaptionJob(model=args.model, input=args.input, output=args.output,
                     questions=args.question, video_stride=args.video_stride,
                     overlays=args.overlays, num_workers=args.num_workers,
                     files_per_part=args.batch_size, use_gpu=args.use_gpu,
                     on_change=args.on_change, pose_models=args.pose_models)
    try:
        summary = caption_archive(job, log=LOG.info)
    except (FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    run = summary["this_run"]
    LOG.info("done: %d files (%s), %d frames, %d people", summary["files"],
             ", ".join(f"{v} {k}" for k, v in sorted(summary["outcomes"].items())),
             summary["frames"], summary["people"])
    LOG.info("this run: %d files in %.1f s with %d workers (%.2f files/s, %.2f people/s), "
             "time in decode %.1f s, pose %.1f s, student %.1f s; actor utilisation %.0f%%",
             run["files"], run["seconds"], run["workers"], run["files_per_s"],
             run["people_per_s"], run["time_s"]["decode_s"], run["time_s"]["pose_s"],
             run["time_s"]["student_s"], 100 * run["actor_utilisation"])
    if len(run["files_per_node"]) > 1:
        LOG.info("files per Ray node: %s", ", ".join(
            f"{node[:8]} {count}" for node, count in sorted(run["files_per_node"].items())))
    for example in summary["examples"]:
        LOG.info("  e.g. %s frame %d person %d: %s", example["source"], example["frame"],
                 example["person"], example["caption"])
    for slow in run["slowest"][:3]:
        LOG.info("  slowest: %s (%.2f s)", slow["source"], slow["seconds"])
    for error in summary["errors"][:5]:
        LOG.info("  error: %s", error)
    LOG.info("rows: %s/parts/*.parquet; summary: %s/summary.json%s", summary["output"],
             summary["output"], f"; overlays: {args.overlays}" if args.overlays else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
