"""How long the training jobs take to read a rendered dataset's train and val splits into Ray
(``dataset.shards.training_splits``, once per job), on a local Ray instance.

    .venv/bin/python benchmarks/training_splits.py --data RUN/dataset [--repeats 2]

Prints a table and writes benchmarks/results/training_splits.json.
"""

from __future__ import annotations

import argparse
import platform
import time

from common import write_results

from p2l3d_core.dataset.shards import training_splits


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a rendered dataset (local folder or s3://)")
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    runs = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        splits = training_splits(args.data)
        runs.append({"seconds": time.perf_counter() - t0,
                     "rows": {name: ds.count() for name, ds in splits.items()}})
        del splits
    print(f"{'run':<5}{'seconds':>9}  rows")
    for i, r in enumerate(runs):
        print(f"{i:<5}{r['seconds']:>9.1f}  {r['rows']}")
    write_results("training_splits",
                  {"machine": platform.platform(), "args": vars(args), "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
