"""jobs/common.py: how a job starts its local Ray instance."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

JOBS = Path(__file__).resolve().parents[2] / "jobs"

# A job's own local instance, started while the suite's instance runs: a worker of the job asks
# the State API, with no address, for the actors (as Ray Train's placement-group cleaner does).
SCRIPT = f"""
import sys
sys.path.insert(0, {str(JOBS)!r})
import ray
from common import init_ray

init_ray(num_cpus=1)

@ray.remote(num_cpus=0)
def actors_seen():
    from ray.util.state import list_actors
    return len(list_actors())

print("actors seen:", ray.get(actors_seen.remote()))
"""


@pytest.mark.slow
def test_workers_of_a_local_instance_find_it_beside_another(ray_local):
    assert ray_local.is_initialized()  # the second instance on this machine
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    out = done.stdout + done.stderr
    assert "Found multiple active Ray instances" not in out
    assert done.returncode == 0, out[-3000:]
    assert "actors seen:" in done.stdout
