"""Render a skeleton dataset (poses, language grounded in 3D, 2D/3D images) with Ray Data.

Examples:
  python jobs/render_dataset.py --output runs/data --num-poses 2000
  python jobs/render_dataset.py --output s3://bucket/p2l3d/h36m --source h36m:path/to/body3d.npz
  ray job submit --working-dir . -- python jobs/render_dataset.py --output s3://bucket/syn ...

Re-running with the same arguments completes an interrupted run and never duplicates rows.
"""

from __future__ import annotations

import argparse
import sys

from common import (
    LOG,
    add_num_cpus,
    at_least_one,
    init_ray,
    location,
    refuse_unreachable,
    setup_logging,
)

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.pipeline import ConfigMismatch, render_dataset
from p2l3d_core.dataset.shards import first_row
from p2l3d_core.poses.sources import count_records


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, type=location,
                   help="local folder or s3://bucket/prefix (S3 settings from AWS_ENDPOINT_URL, "
                        "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION)")
    d = DatasetConfig()  # the defaults' one source
    p.add_argument("--num-poses", type=int, default=d.num_poses,
                   help=f"poses to render (default {d.num_poses})")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic set and captions")
    p.add_argument("--source", default="synthetic",
                   help="synthetic (procedural generator, default) | h36m:FILE (mmpose body3d npz "
                        "with cameras.pkl beside it, or a VideoPose3D data_3d_h36m.npz) | "
                        "bvh:FILE[@ACTION] (mocap clip, every 4th frame; ACTION labels it). "
                        "For a file source --num-poses is an upper bound")
    p.add_argument("--image-size", type=int, default=d.image_size,
                   help=f"image side in pixels (default {d.image_size})")
    p.add_argument("--shard-size", type=int, default=d.shard_size,
                   help=f"poses per Parquet shard (default {d.shard_size})")
    p.add_argument("--num-captions", type=int, default=d.num_captions,
                   help=f"captions per pose (default {d.num_captions})")
    p.add_argument("--concurrency", type=at_least_one, default=None,
                   help="max parallel shard tasks")
    add_num_cpus(p)
    p.add_argument("--verify", action="store_true",
                   help="on a complete dataset, check every shard's sha256 against the manifest "
                        "(sizes are always checked) and render damaged ones again")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a dataset built with other arguments at --output")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    args = parse_args(argv)
    try:
        config = DatasetConfig(num_poses=args.num_poses, seed=args.seed, source=args.source,
                               image_size=args.image_size, shard_size=args.shard_size,
                               num_captions=args.num_captions)
        count_records(config.source, config.seed)  # a file source is read (and checked) now
    except (ValueError, FileNotFoundError) as err:
        LOG.error("invalid arguments: %s", err)
        return 2
    if refuse_unreachable(args.output):
        return 2
    init_ray(num_cpus=args.num_cpus)
    try:
        manifest = render_dataset(args.output, config, overwrite=args.overwrite,
                                  concurrency=args.concurrency, verify=args.verify, log=LOG.info)
    except (ConfigMismatch, FileNotFoundError, ValueError) as err:
        LOG.error("%s", err)
        return 2
    LOG.info("dataset: %s", args.output)
    LOG.info("  poses per split: %s", manifest["splits"])
    LOG.info("  poses per action: %s", dict(sorted(manifest["actions"].items())))
    LOG.info("  columns: %s", ", ".join(manifest["columns"]))
    if manifest["num_rows"]:
        sample = first_row(args.output)
        LOG.info("  example %s (%s):", sample["pose_id"], sample["action"])
        for caption in sample["captions"]:
            LOG.info("    caption: %s", caption)
        for q, a, depth in list(zip(sample["questions"], sample["answers"],
                                    sample["needs_depth"]))[:4]:
            LOG.info("    Q: %s  A: %s%s", q, a, "  [needs depth]" if depth else "")
    if manifest["failures"]:
        LOG.warning("  %d poses failed, e.g. %s", len(manifest["failures"]),
                    manifest["failures"][:3])
    if not manifest["num_rows"]:
        LOG.error("no pose could be rendered from %s", args.source)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
