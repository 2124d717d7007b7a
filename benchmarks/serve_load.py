"""The Ray Serve app under load, on 127.0.0.1 only, bounded in requests and time. Prints
tables, writes JSON.

    .venv/bin/python benchmarks/serve_load.py [--model runs/quickstart/student] [--quick]

1. Latency and throughput at concurrency 1, 4, 16 and 32, for keypoint requests and for photo
   requests (POST /v1/caption): requests/s, p50, p99, errors. Targets (issue 24): a keypoint
   caption at concurrency 1 p50 <= 40 ms; at 16, p99 <= 3 x p50 and no errors.
2. Replicas over a burst of photo requests and after it: the autoscaler's scale-up under load
   and its scale-down after (``downscale_delay_s`` of config.yaml).
3. What ``@serve.batch`` buys: keypoint requests at concurrency 16 with the Student's
   ``max_batch_size`` 16 against 1 (the batch size reached, from the responses' timings).

The app is the one ``serve run serve_apps/config.yaml`` starts (``app.build_from_config``), on
a local Ray instance with as many logical CPUs as this machine has cores.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results

SHARED = ROOT.parent / "shared" / "data"
PHOTO = ROOT / "serve_apps" / "static" / "samples" / "000000000785.jpg"


def _keypoints() -> list:
    ann = json.loads((SHARED / "poses" / "mmpose" / "coco" / "test_coco.json").read_text())
    kp = np.asarray(ann["annotations"][0]["keypoints"], dtype=float).reshape(17, 3)
    kp[:, 2] = kp[:, 2] > 0
    return kp.tolist()


async def load(url: str, body: dict, concurrency: int, requests: int, max_s: float) -> dict:
    """``requests`` POSTs (at most ``max_s`` seconds) with ``concurrency`` in flight."""
    import httpx

    latencies, errors, batches = [], {}, []
    sent = 0
    deadline = time.perf_counter() + max_s

    async def worker(client) -> None:
        nonlocal sent
        while sent < requests and time.perf_counter() < deadline:
            sent += 1
            t0 = time.perf_counter()
            try:
                r = await client.post(url, json=body, timeout=60)
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t0)
                    batches.append(r.json()["timings_ms"].get("batch", 1))
                else:
                    errors[r.status_code] = errors.get(r.status_code, 0) + 1
            except httpx.HTTPError as err:
                errors[type(err).__name__] = errors.get(type(err).__name__, 0) + 1

    start = time.perf_counter()
    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    wall = time.perf_counter() - start
    ms = 1000 * np.asarray(latencies) if latencies else np.asarray([np.nan])
    return {"concurrency": concurrency, "ok": len(latencies), "errors": errors,
            "requests_per_s": round(len(latencies) / wall, 2),
            "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "mean_batch": round(float(np.mean(batches)), 2) if batches else None}


def replicas() -> dict[str, int]:
    from ray import serve

    app = serve.status().applications.get("p2l3d")
    if app is None:
        return {}
    return {name: sum(d.replica_states.values()) for name, d in app.deployments.items()}


async def burst(url: str, body: dict, seconds: float, after_s: float, every_s: float) -> list:
    """Replica counts every ``every_s`` through a burst at concurrency 32, then while idle."""
    timeline = []
    start = time.perf_counter()
    task = asyncio.create_task(load(url, body, 32, 10**6, seconds))
    while time.perf_counter() - start < seconds + after_s:
        timeline.append({"t_s": round(time.perf_counter() - start, 1),
                         "load": not task.done(), **replicas()})
        await asyncio.sleep(every_s)
    await task
    return timeline


def start_app(model: str) -> str:
    from ray import serve

    from serve_apps.app import build_from_config

    app, _ = build_from_config(ROOT / "serve_apps" / "config.yaml", model=model)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(app, name="p2l3d", route_prefix="/")
    return f"http://127.0.0.1:{port}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "runs" / "quickstart" / "student"))
    p.add_argument("--quick", action="store_true", help="fewer requests, a shorter burst")
    args = p.parse_args(argv)
    import ray
    from ray import serve

    # As many logical CPUs as cores: with the config's CPU shares, replicas are added only while
    # a core is left for them (more would share the cores and only queue).
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
             log_to_driver=False)
    url = start_app(str(Path(args.model).resolve()))
    keypoints = {"keypoints": _keypoints(), "format": "coco17"}
    photo = {"image_base64": base64.b64encode(PHOTO.read_bytes()).decode()}
    n = 60 if args.quick else 200
    results: dict = {"model": args.model, "cpus": os.cpu_count(), "levels": []}
    # The burst first, from one replica each: scale-up under load, scale-down after it.
    burst_s, after_s = (20, 30) if args.quick else (45, 90)
    results["burst"] = asyncio.run(burst(url + "/v1/caption", photo, burst_s, after_s, 3))
    for kind, body in (("keypoints", keypoints), ("photo", photo)):
        asyncio.run(load(url + "/v1/caption", body, 4, 20, 30))  # warm-up
        for c in (1, 4, 16, 32):
            row = asyncio.run(load(url + "/v1/caption", body, c, max(n, 4 * c), 60))
            row["kind"] = kind
            results["levels"].append(row)
            print(f"{kind} c={c}: {row}", flush=True)
    # @serve.batch: the same load with batches of at most 1.
    batched = asyncio.run(load(url + "/v1/caption", keypoints, 16, n, 60))
    serve.delete("p2l3d")
    from serve_apps.app import build_from_config

    app, _ = build_from_config(ROOT / "serve_apps" / "config.yaml",
                               model=str(Path(args.model).resolve()),
                               overrides={"Student": {"user_config": {"max_batch_size": 1}}})
    serve.run(app, name="p2l3d", route_prefix="/")
    single = asyncio.run(load(url + "/v1/caption", keypoints, 16, n, 60))
    results["batching"] = {"max_batch_size_16": batched, "max_batch_size_1": single}
    serve.shutdown()
    ray.shutdown()

    print("\n| request | concurrency | req/s | p50 ms | p99 ms | errors | mean batch |")
    print("|---|---|---|---|---|---|---|")
    for r in results["levels"]:
        print(f"| {r['kind']} | {r['concurrency']} | {r['requests_per_s']} | {r['p50_ms']} | "
              f"{r['p99_ms']} | {sum(r['errors'].values()) or 0} | {r['mean_batch']} |")
    print("\nReplicas through a burst (concurrency 32, photos) and after it:")
    for point in results["burst"]:
        print(f"  t={point['t_s']:5.1f} s {'load' if point['load'] else 'idle'}: "
              + ", ".join(f"{k} {v}" for k, v in point.items() if k not in ("t_s", "load")))
    b, s = results["batching"]["max_batch_size_16"], results["batching"]["max_batch_size_1"]
    print(f"\n@serve.batch at concurrency 16, keypoints: max_batch_size 16: "
          f"{b['requests_per_s']} req/s (mean batch {b['mean_batch']}, p50 {b['p50_ms']} ms); "
          f"max_batch_size 1: {s['requests_per_s']} req/s (p50 {s['p50_ms']} ms)")
    write_results("serve_load", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
