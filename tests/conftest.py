"""Shared pytest fixtures. Keep small; append new fixtures below."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.ports import free_port

# Real sample data lives beside the repository (../shared/data), not in it: the Human3.6M and
# MPI-INF-3DHP samples are research-only and must not be copied into the project.
SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder; tests using it skip when it is absent (e.g. a fresh clone)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real sample data not found at {SHARED_DATA.resolve()} "
                    "(research-only datasets are read from ../shared/data, never copied here)")
    return SHARED_DATA.resolve()


@pytest.fixture(scope="session")
def shared_file(shared_data: Path) -> Callable[[str], Path]:
    """``shared_file('poses/mmpose/h36m/cameras.pkl')`` -> path, or skip if that file is absent."""

    def get(relative: str) -> Path:
        path = shared_data / relative
        if not path.exists():
            pytest.skip(f"sample file {relative} not found under {shared_data}")
        return path

    return get


# --- Ray and S3 -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server():
    """A real S3 endpoint (moto's server) on 127.0.0.1 with the AWS variables pointing at it."""
    import os

    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env["AWS_ENDPOINT_URL"]
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_server):
    """A fresh, empty bucket; returns its ``s3://`` URI."""
    import uuid

    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray instance for the whole session. It gets more logical CPUs than the
    machine's 2 cores so that Ray Data's read tasks never starve behind busy workers."""
    import os

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # No GPUs even on a machine with some: the tests are the CPU path (GPU runs are refused
    # on an instance without them, which tests check).
    # address="local": this test session's own instance, even where a `ray start` cluster runs
    # on the machine (ray.init would join it and refuse num_cpus).
    ray.init(address="local", num_cpus=4, num_gpus=0, object_store_memory=512 * 1024**2,
             include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models on a shared CPU: one torch thread is as fast, and far faster than two threads
    spin-waiting against other processes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
