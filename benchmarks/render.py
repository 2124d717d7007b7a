"""Rendering throughput: poses described and rendered per second on one core, and the speed-up
of the Ray Data job from 1 to 2 workers. Prints a table and writes JSON.

    .venv/bin/python benchmarks/render.py [--poses 3000] [--job-poses 8000] [--image-size 128]

Targets (issue 2): >= 1,000 poses/s per core at 128 px; >= 1.6x from 1 to 2 workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset.build import build_table
from p2l3d_core.language import describe_batch
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.render import RenderConfig, encode_png, render_2d, render_3d


def _rate(n: int, fn) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def per_core(poses: int, image_size: int) -> dict:
    """Single-threaded stage rates (poses/s) on this process's one core."""
    cv2.setNumThreads(1)
    config = DatasetConfig(num_poses=poses, image_size=image_size)
    rcfg = RenderConfig(image_size=image_size)
    records = generate_records(0, 0, poses)
    joints = np.stack([r.joints_3d for r in records])
    cams = np.stack([r.camera.position for r in records])
    uv = [r.project()[0] for r in records]
    jc = [r.camera.to_camera(r.joints_3d) for r in records]
    build_table(records[:50], config)  # warm-up
    return {
        "generate": _rate(poses, lambda: generate_records(0, 0, poses)),
        "describe": _rate(poses, lambda: describe_batch(joints, [r.action for r in records], cams,
                                                        list(range(poses)))),
        "render_2d+png": _rate(poses, lambda: [encode_png(render_2d(u, rcfg)) for u in uv]),
        "render_3d+png": _rate(poses, lambda: [encode_png(render_3d(j, rcfg)) for j in jc]),
        "describe+render (build_table)": _rate(poses, lambda: build_table(records, config)),
        "generate+describe+render": _rate(poses, lambda: build_table(generate_records(0, 0, poses),
                                                                     config)),
    }


def _busy(batch: dict, seconds: float = 0.5) -> dict:
    """A UDF that only burns CPU: the best case for scaling."""
    t0 = time.process_time()
    while time.process_time() - t0 < seconds:
        pass
    return batch


def ray_data_ceiling(batches: int = 12) -> dict:
    """Speed-up 1 -> 2 of a pure-CPU UDF under Ray Data, and of the same work as plain Ray
    tasks: what this machine allows once Ray's own processes have taken their share."""
    import ray

    out = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        ray.data.range(batches, override_num_blocks=batches).map_batches(
            _busy, batch_size=1, concurrency=workers).materialize()
        out[f"ray_data_{workers}"] = time.perf_counter() - t0
    busy_task = ray.remote(lambda: _busy({}))
    for workers in (1, 2):  # at most `workers` tasks in flight
        t0 = time.perf_counter()
        pending, done = [], 0
        while done < batches:
            while len(pending) < workers and done + len(pending) < batches:
                pending.append(busy_task.remote())
            ready, pending = ray.wait(pending, num_returns=1)
            ray.get(ready)
            done += 1
        out[f"plain_tasks_{workers}"] = time.perf_counter() - t0
    out["ray_data_speedup"] = out["ray_data_1"] / out["ray_data_2"]
    out["plain_tasks_speedup"] = out["plain_tasks_1"] / out["plain_tasks_2"]
    return out


def job_scaling(poses: int, image_size: int, shard_size: int) -> dict:
    """Wall time of the Ray Data job with 1 and with 2 concurrent shard tasks."""
    import ray

    from p2l3d_core.dataset.pipeline import render_dataset

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, object_store_memory=512 * 1024**2, include_dashboard=False,
             log_to_driver=False)
    out = {}
    try:
        config = DatasetConfig(num_poses=poses, image_size=image_size, shard_size=shard_size)
        warm = DatasetConfig(num_poses=2 * shard_size, image_size=image_size, shard_size=shard_size)
        with tempfile.TemporaryDirectory() as tmp:
            render_dataset(f"{tmp}/warm", warm, concurrency=2, log=lambda m: None)  # start workers
            for workers in (1, 2):
                t0 = time.perf_counter()
                render_dataset(f"{tmp}/w{workers}", config, concurrency=workers, log=lambda m: None)
                seconds = time.perf_counter() - t0
                out[workers] = {"seconds": seconds, "poses_per_s": poses / seconds}
        out["ceiling"] = ray_data_ceiling()
    finally:
        ray.shutdown()
    out["speedup"] = out[1]["seconds"] / out[2]["seconds"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--poses", type=int, default=3000, help="poses for the per-core measurement")
    p.add_argument("--job-poses", type=int, default=8000, help="poses for the Ray Data job runs")
    p.add_argument("--shard-size", type=int, default=500)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--output", default=str(Path(__file__).parent / "results" / "render.json"))
    args = p.parse_args()

    core = per_core(args.poses, args.image_size)
    print(f"\nper core, {args.image_size} px, {args.poses} poses (single thread)")
    print(f"{'stage':34s} {'poses/s':>10s}")
    for stage, rate in core.items():
        print(f"{stage:34s} {rate:10,.0f}")
    scaling = job_scaling(args.job_poses, args.image_size, args.shard_size)
    print(f"\nRay Data job, {args.job_poses} poses, shards of {args.shard_size}")
    print(f"{'workers':>8s} {'seconds':>9s} {'poses/s':>9s}")
    for w in (1, 2):
        print(f"{w:8d} {scaling[w]['seconds']:9.2f} {scaling[w]['poses_per_s']:9,.0f}")
    print(f"speed-up 1 -> 2 workers: {scaling['speedup']:.2f}x (target >= 1.6x)")
    c = scaling["ceiling"]
    print(f"ceiling on this machine, pure-CPU UDF: Ray Data {c['ray_data_speedup']:.2f}x, "
          f"plain Ray tasks {c['plain_tasks_speedup']:.2f}x")
    target = core["describe+render (build_table)"]
    print(f"describe+render per core: {target:,.0f} poses/s (target >= 1,000)")

    result = {"image_size": args.image_size, "per_core_poses_per_s": core,
              "job": {str(k): v for k, v in scaling.items()},
              "command": "python benchmarks/render.py " + " ".join(sys.argv[1:]),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "processor": platform.processor() or platform.machine()},
              "targets_met": {"per_core_1000": target >= 1000,
                              "speedup_1.6": scaling["speedup"] >= 1.6}}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
