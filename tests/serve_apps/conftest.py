"""The Serve app with real parts for the modules of this folder: a tiny untrained student saved
with save_pretrained, a local Ray instance (with its dashboard and job API), the
app deployed from ``serve_apps/config.yaml`` as ``serve run`` deploys it (its deployments'
options, autoscaling and CPU shares) on a free port of 127.0.0.1. One app per module: start-up
takes 20-40 s on 2 cores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.ports import free_port, free_ports

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "serve_apps" / "config.yaml"
APP = "p2l3d"
START_TIMEOUT_S = 180
HEAD_TIMEOUT_S = 90


@pytest.fixture(scope="session")
def serve_model(tmp_path_factory, shared_data) -> str:
    """A tiny untrained student reading skeleton image and keypoints (a valid model folder)."""
    import torch

    from p2l3d_core.models import Student, save_pretrained
    from p2l3d_core.models.config import preset

    torch.manual_seed(2)
    return str(save_pretrained(Student(preset("tiny", 32, pose_input="image+keypoints")),
                               tmp_path_factory.mktemp("serve_student") / "model"))


def _app_config(args: dict, port: int, deployments: dict | None = None):
    """config.yaml with the test's arguments, port and deployment options (name -> options
    updated), as Serve's schema."""
    import yaml
    from ray.serve.schema import ServeDeploySchema

    config = yaml.safe_load(CONFIG.read_text())
    config["http_options"].update(host="127.0.0.1", port=port)
    (app,) = config["applications"]
    app["args"] = {**app["args"], **args}
    for deployment in app["deployments"]:
        deployment.update((deployments or {}).get(deployment["name"], {}))
    return ServeDeploySchema.model_validate(config)


def _start_head(env: dict, log: Path) -> tuple[subprocess.Popen, str, str]:
    """``ray start --head --block`` on free ports -> (process, GCS address, dashboard URL).

    Not ``ray.init()``: that starts the dashboard agent (which serves Ray's job submission) on
    the fixed port 52365, which another Ray instance on the machine may hold; the agent then
    runs without its HTTP server and every job submission fails with "No available agent to
    submit job". ``ray start`` takes every port as an argument."""
    flags = ("--port", "--dashboard-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--ray-client-server-port", "--runtime-env-agent-port",
             "--metrics-export-port")
    ports = dict(zip(flags, free_ports(len(flags)), strict=True))
    ray = Path(sys.executable).with_name("ray")
    command = [str(ray), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
               "--num-cpus=4", "--num-gpus=0", f"--object-store-memory={512 * 1024**2}",
               "--include-dashboard=true", "--dashboard-host=127.0.0.1",
               "--disable-usage-stats", *(f"{k}={v}" for k, v in ports.items())]
    with log.open("w") as out:
        head = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    dashboard = f"http://127.0.0.1:{ports['--dashboard-port']}"
    deadline = time.monotonic() + HEAD_TIMEOUT_S
    while True:
        if head.poll() is not None:
            raise RuntimeError(f"ray start failed:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{dashboard}/api/version", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop_head(head)
            raise RuntimeError(f"Ray's head did not start in {HEAD_TIMEOUT_S} s:\n"
                               f"{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return head, f"127.0.0.1:{ports['--port']}", dashboard


def _stop_head(head: subprocess.Popen) -> None:
    """SIGTERM to the ``ray start --block`` we started: it stops the processes it started."""
    head.terminate()
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)  # its own session: only what it started
        head.wait(timeout=30)


@pytest.fixture(scope="module")
def start_app(s3_server, serve_model, tmp_path_factory) -> Iterator[Callable[..., dict]]:
    """``start_app(jobs=...)`` -> ``{"url", "dashboard", "model"}``: a Ray instance of this
    module's own (4 logical CPUs, its dashboard and job API on free ports) and the app on it,
    both stopped after the module.

    Ray starts after moto's S3 variables are in the environment (``s3_server``): Ray jobs run
    under the raylet's environment, so that is how a batch job submitted through ``/v1/jobs``
    reaches the bucket. A Ray instance the session already started (``ray_local``) is left
    first and joined again afterwards as it was started."""
    import ray
    from ray import serve

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    restart = ray.is_initialized()
    if restart:
        ray.shutdown()
    heads: list[subprocess.Popen] = []

    def start(http: dict | None = None, deployments: dict | None = None, **args) -> dict:
        """``http``: Serve's HTTP options beside host and port (``request_timeout_s``);
        ``deployments``: options by deployment name, over config.yaml's."""
        assert not heads, "one app per module"
        head, address, dashboard = _start_head(
            dict(os.environ), tmp_path_factory.mktemp("ray_head") / "ray_start.log")
        heads.append(head)
        ray.init(address=address, log_to_driver=False)
        if args.get("jobs") is not None:  # the job API of this Ray instance, unless named
            args["jobs"] = {"address": dashboard, **args["jobs"]}
        port = free_port()
        config = _app_config({"model": serve_model, **args}, port, deployments)
        serve.start(http_options={"host": "127.0.0.1", "port": port, **(http or {})})
        # What `serve run serve_apps/config.yaml` does once Serve is up.
        serve.context._get_global_client().deploy_apps(config)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            app = serve.status().applications.get(APP)
            if app is not None and app.status == "RUNNING":
                break
            assert app is None or app.status not in ("DEPLOY_FAILED", "UNHEALTHY"), (
                f"the app failed to start: {app.message}\n{app.deployments}")
            assert time.monotonic() < deadline, f"the app did not start in {START_TIMEOUT_S} s"
            time.sleep(0.5)
        return {"url": f"http://127.0.0.1:{port}", "model": serve_model, "dashboard": dashboard}

    yield start
    if heads:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()
            _stop_head(heads[0])
    if restart:  # as tests/conftest.py's session-wide ray_local started it
        ray.init(address="local", num_cpus=4, num_gpus=0, object_store_memory=512 * 1024**2,
                 include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)


@pytest.fixture(scope="session")
def http() -> Iterator:
    import httpx

    with httpx.Client(timeout=120, trust_env=False) as client:
        yield client
