"""Faults in the Ray Serve app under steady load (127.0.0.1, bounded): a Student replica's
process killed (SIGKILL), and the app redeployed. Prints a table, writes JSON.

    .venv/bin/python benchmarks/serve_faults.py [--model runs/quickstart/student]

Load: keypoint captions at concurrency 4 for the whole run. A client retries a failed request
once after 0.5 s (what the 503's Retry-After asks of it). Reported per fault: requests that
failed at first, those lost even after the retry, and the seconds until the deployment is back
to its replicas. Targets (issue 24): nothing lost after one retry.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import write_results
from serve_load import _keypoints, start_app


class Load:
    """Steady requests with one retry each; counts what failed once and what was lost."""

    def __init__(self, url: str, body: dict, concurrency: int = 4):
        self.url, self.body, self.concurrency = url, body, concurrency
        self.ok = self.failed_once = self.lost = 0
        self.statuses: dict[str, int] = {}
        self.running = True

    async def _one(self, client) -> bool:
        import httpx

        try:
            r = await client.post(self.url, json=self.body, timeout=30)
            if r.status_code == 200:
                return True
            key = str(r.status_code)
        except httpx.HTTPError as err:
            key = type(err).__name__
        self.statuses[key] = self.statuses.get(key, 0) + 1
        return False

    async def _worker(self, client) -> None:
        while self.running:
            if await self._one(client):
                self.ok += 1
                continue
            self.failed_once += 1
            await asyncio.sleep(0.5)
            if await self._one(client):
                self.ok += 1
            else:
                self.lost += 1

    async def run(self) -> None:
        import httpx

        async with httpx.AsyncClient() as client:
            await asyncio.gather(*(self._worker(client) for _ in range(self.concurrency)))


DASHBOARD: dict[str, str] = {}


def replica_pids(deployment: str) -> list[int]:
    from ray.util.state import list_actors

    return [a.pid for a in list_actors(address=DASHBOARD["url"], limit=1000,
                                       filters=[("state", "=", "ALIVE")])
            if a.class_name.endswith(f":{deployment}") or a.class_name.endswith(deployment)]


def running_replicas(deployment: str) -> int:
    from ray import serve

    app = serve.status().applications.get("p2l3d")
    if app is None or deployment not in app.deployments:
        return 0
    return app.deployments[deployment].replica_states.get("RUNNING", 0)


async def fault(url: str, body: dict, act, settle_s: float = 5, watch_s: float = 90) -> dict:
    """Steady load; ``act()`` after ``settle_s``; then until the Student is running again."""
    load = Load(url, body)
    task = asyncio.create_task(load.run())
    await asyncio.sleep(settle_s)
    before = load.ok
    t0 = time.perf_counter()
    detail = await asyncio.to_thread(act)  # serve.run waits for the rollout: off the loop
    back = None
    await asyncio.sleep(1)
    while time.perf_counter() - t0 < watch_s:
        if running_replicas("Student") >= 1 and load.ok > before + 20:
            back = round(time.perf_counter() - t0, 1)
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(3)
    load.running = False
    await task
    return {"action": detail, "ok": load.ok, "failed_at_first": load.failed_once,
            "lost_after_retry": load.lost, "statuses": load.statuses, "back_after_s": back}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "runs" / "quickstart" / "student"))
    args = p.parse_args(argv)
    import ray
    from ray import serve

    from serve_apps.app import build_from_config

    context = ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=True,
                       log_to_driver=False)
    DASHBOARD["url"] = f"http://{context.dashboard_url}"  # the state API: where the replicas are
    model = str(Path(args.model).resolve())
    url = start_app(model) + "/v1/caption"
    body = {"keypoints": _keypoints(), "format": "coco17"}
    results = {}

    def kill_student() -> str:
        pids = replica_pids("Student")
        os.kill(pids[0], signal.SIGKILL)
        return f"SIGKILL to the Student replica (pid {pids[0]})"

    results["replica_killed"] = asyncio.run(fault(url, body, kill_student))
    print(f"replica killed: {results['replica_killed']}", flush=True)

    def redeploy() -> str:
        app, _ = build_from_config(ROOT / "serve_apps" / "config.yaml", model=model,
                                   overrides={"Student": {"ray_actor_options": {
                                       "num_cpus": 0.49}}})
        serve.run(app, name="p2l3d", route_prefix="/")
        return "the app redeployed with the Student's resources changed: its replica replaced"

    results["redeployed"] = asyncio.run(fault(url, body, redeploy))
    print(f"redeployed: {results['redeployed']}", flush=True)
    serve.shutdown()
    ray.shutdown()
    print("\n| fault | ok | failed at first | lost after one retry | back after s |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['ok']} | {r['failed_at_first']} | {r['lost_after_retry']} | "
              f"{r['back_after_s']} |")
    write_results("serve_faults", results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
