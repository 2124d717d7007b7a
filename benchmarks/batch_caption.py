"""Batch captioning throughput: an archive made by repeating the sample photos and videos in
../shared/data to a few hundred files, captioned by ``inference/batch.py`` on a local Ray
instance with 1 and 2 actors, from a local folder and from a moto S3 server on 127.0.0.1.
Prints a table, writes JSON.

    .venv/bin/python benchmarks/batch_caption.py [--model runs/quickstart/student]
        [--photos 240] [--videos 4] [--workers 1 2] [--where local s3]

Per run: files/s and people/s (wall time, actor start-up included), the time the actors spent
in decode, pose (MoveNet) and student, and the actor pool's utilisation (busy time over wall
time x actors). The per-core rate at the end is what the README's "100 million photos" line
is computed from.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

from p2l3d_core import storage
from p2l3d_core.inference.batch import CaptionJob, caption_archive

SHARED = ROOT.parent / "shared" / "data"


def make_archive(folder: Path, photos: int, videos: int) -> None:
    """``photos`` copies of the sample photos under distinct names and ``videos`` of the clips."""
    sources = sorted((SHARED / "poses" / "mmpose" / "coco").glob("*.jpg")) + sorted(
        (SHARED / "images").glob("*.png")) + sorted((SHARED / "images").glob("*.jpg"))
    clips = [SHARED / "videos" / "two_people_indoor.mp4",
             SHARED / "videos" / "street_pedestrians_mmpose.mp4"]
    for i in range(photos):
        src = sources[i % len(sources)]
        target = folder / f"batch{i // 50:02d}" / f"photo{i:04d}{src.suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
    for i in range(videos):
        shutil.copyfile(clips[i % len(clips)], folder / f"clip{i:02d}.mp4")


def moto_server() -> tuple[object, str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line a request otherwise
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update({"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
                       "AWS_EC2_METADATA_DISABLED": "true"})
    import boto3

    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket="bench")
    return server, "s3://bench"


def run_once(model: str, source: str, output: str, workers: int, stride: int) -> dict:
    import ray

    ray.init(address="local", num_cpus=workers, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {k: v for k, v in os.environ.items()
                                       if k.startswith("AWS_")}})
    try:
        summary = caption_archive(CaptionJob(model=model, input=source, output=output,
                                             questions=["Is the left knee bent?"],
                                             video_stride=stride, num_workers=workers),
                                  log=lambda *_: None)
    finally:
        ray.shutdown()
    run = summary["this_run"]
    return {"files": run["files"], "people": summary["people"], "seconds": run["seconds"],
            "files_per_s": run["files_per_s"], "people_per_s": run["people_per_s"],
            "time_s": run["time_s"], "actor_utilisation": run["actor_utilisation"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "runs" / "quickstart" / "student"))
    p.add_argument("--photos", type=int, default=240)
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--video-stride", type=int, default=12)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--where", nargs="+", default=["local", "s3"], choices=["local", "s3"])
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive"
        make_archive(archive, args.photos, args.videos)
        server = None
        for where in args.where:
            source = str(archive)
            if where == "s3":
                server, bucket = moto_server()
                source = f"{bucket}/archive"
                storage.upload_folder(str(archive), source)
            for workers in args.workers:
                output = (f"{bucket}/out-{workers}" if where == "s3"
                          else str(Path(tmp) / f"out-{where}-{workers}"))
                t0 = time.perf_counter()
                result = run_once(args.model, source, output, workers, args.video_stride)
                result.update(where=where, workers=workers,
                              wall_s=round(time.perf_counter() - t0, 1))
                rows.append(result)
                print(f"{where} x{workers}: {result['files']} files, {result['people']} people "
                      f"in {result['seconds']:.1f} s", flush=True)
        if server is not None:
            server.stop()
    print(f"\nArchive: {args.photos} photos + {args.videos} videos (stride "
          f"{args.video_stride}); model {args.model}; 2-core VM\n")
    print("| input | actors | files/s | people/s | decode s | pose s | student s | utilisation |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        t = r["time_s"]
        print(f"| {r['where']} | {r['workers']} | {r['files_per_s']:.2f} | "
              f"{r['people_per_s']:.2f} | {t['decode_s']:.1f} | {t['pose_s']:.1f} | "
              f"{t['student_s']:.1f} | {100 * r['actor_utilisation']:.0f}% |")
    busy = [r for r in rows if r["workers"] == 1]
    if busy:
        per_core = max(r["files_per_s"] for r in busy)
        print(f"\nOne actor (one core): {per_core:.2f} files/s, start-up included. At that rate "
              f"100 million photos take {1e8 / per_core / 3600:,.0f} core-hours: "
              f"{1e8 / per_core / 3600 / 64:,.0f} hours on 64 cores (arithmetic, not measured)")
    write_results("batch_caption", {"photos": args.photos, "videos": args.videos,
                                    "video_stride": args.video_stride, "model": args.model,
                                    "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
