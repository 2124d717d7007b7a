"""What every job shares: joining or starting Ray, and logging with timestamps.

``ray.init()`` joins the cluster named by ``RAY_ADDRESS`` (set by ``ray job submit``) and
otherwise starts a local instance, the embedded default.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

LOG = logging.getLogger("p2l3d")
# Ray Data's console shows warnings and errors only (the file log keeps everything).
RAY_DATA_LOGGING = str(Path(__file__).resolve().parents[1] / "p2l3d_core" / "configs"
                       / "ray_data_logging.yaml")
# Ray Data reads it when it is first imported: every job imports this module before Ray.
os.environ.setdefault("RAY_DATA_LOGGING_CONFIG", RAY_DATA_LOGGING)


def at_least_one(text: str) -> int:
    """An argparse type: a whole number >= 1 (a count of CPUs, of parallel tasks)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_num_cpus(parser: argparse.ArgumentParser) -> None:
    """``--num-cpus``, the size of the local Ray instance a job starts when no cluster is named.
    Below 1 no training worker could ever be placed: the job would wait forever, so it is
    refused as it is parsed."""
    parser.add_argument("--num-cpus", type=at_least_one, default=None,
                        help="CPUs of a local Ray instance (default: the cores + 2)")


def location(text: str) -> str:
    """An argparse type for ``--output``, ``--data`` and ``--run``: a local folder made absolute
    (Ray workers run in other directories) or an ``s3://`` URI; an empty one is refused."""
    from p2l3d_core import storage

    try:
        path = storage.absolute(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if not storage.is_s3(path) and os.path.exists(path) and not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"{path} is an existing file, not a folder")
    return path


def refuse_unreachable(*uris: str | None) -> bool:
    """Whether one of the job's storage locations cannot be reached (an ``s3://`` store without
    network or settings), said in one line in the log. Checked before Ray starts."""
    from p2l3d_core import storage

    for uri in uris:
        if uri:
            try:
                storage.check_reachable(uri)
            except ValueError as err:
                LOG.error("%s", err)
                return True
    return False


SET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def check_set_names(names: list[str], flag: str) -> str | None:
    """Why the names of extra evaluation sets (``--set NAME=...``, ``--real NAME=...``) cannot
    be used, or None. A name becomes a report section and part of file paths: ``test`` would
    replace the test split the targets are computed on, a repeated name would replace another
    set, and a path separator or ``..`` would write outside the report folder."""
    seen: set[str] = set()
    for name in names:
        if name == "test":
            return f"{flag} test=...: 'test' is the dataset's own test split; choose another name"
        if not SET_NAME.fullmatch(name) or ".." in name:
            return (f"{flag} {name!r}=...: a set name is letters, digits, '_', '-' and '.', "
                    "starting with a letter or digit (no path separators or '..')")
        if name in seen:
            return f"{flag} {name}=... is given twice"
        seen.add(name)
    return None


def setup_logging(stream=None) -> None:
    """INFO and up, timestamped, to stdout (``stream``: elsewhere, e.g. stderr when stdout
    carries results)."""
    logging.basicConfig(level=logging.INFO, stream=stream or sys.stdout,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")


def init_ray(num_cpus: int | None = None, object_store_mb: int = 1024) -> None:
    """Join the running cluster if there is one, else start a small local Ray instance."""
    import ray

    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # offline S3 clients stall on it
    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=True)
        LOG.info("joined Ray cluster at %s", os.environ["RAY_ADDRESS"])
        return
    if num_cpus is None:
        # Two logical CPUs more than the cores: training workers hold one CPU each for the whole
        # run, and Ray Data's read tasks still need slots to feed them (else they starve).
        num_cpus = (os.cpu_count() or 2) + 2
    # With the dashboard: Ray Train's placement-group cleaner asks the State API (served by the
    # dashboard) whether the train controller lives, and without it warns every second or two.
    # The setup hook points that query at this instance (see _export_address).
    # address="local": a new instance even where `ray start` left a cluster on this machine
    # (ray.init would join that one, and refuse num_cpus for it).
    context = ray.init(address="local", num_cpus=num_cpus,
                       object_store_memory=object_store_mb * 1024**2,
                       include_dashboard=None, log_to_driver=True,
                       runtime_env={"worker_process_setup_hook": _export_address(),
                                    "env_vars": {"RAY_DATA_LOGGING_CONFIG":
                                                 os.environ["RAY_DATA_LOGGING_CONFIG"]}})
    LOG.info("started a local Ray instance with %s CPUs (dashboard: %s)",
             ray.cluster_resources().get("CPU"), context.dashboard_url or "not running")


def refuse_without_gpus(num_workers: int) -> bool:
    """Whether ``num_workers`` one-GPU training workers can never start here (said in the log).

    Ray Train waits for the resources it asks for, so without this a GPU run on a machine
    without GPUs (``--preset paper`` on a laptop) would wait forever. A local instance has the
    GPUs it started with; a joined cluster may be autoscaled, so there a shortfall is logged
    and the job waits."""
    import ray

    have = int(ray.cluster_resources().get("GPU", 0))
    if have >= num_workers:
        return False
    if os.environ.get("RAY_ADDRESS"):
        LOG.warning("training wants %d GPU workers and the cluster has %d GPUs now: waiting "
                    "for an autoscaler to add them", num_workers, have)
        return False
    fewer = f", or lower --num-workers to {have}" if have else ""
    LOG.error("training wants %d GPU workers (--use-gpu, or the preset's), and the local Ray "
              "instance has %d GPUs: submit the job to a GPU cluster (ray job submit), or pass "
              "--no-use-gpu%s", num_workers, have, fewer)
    return True


def _export_address():
    """A worker-process setup hook that sets ``RAY_ADDRESS`` to the worker's own cluster.

    Why: Ray's State API, called with no address inside a worker (Ray Train's placement-group
    cleaner asks it whether the train controller lives), finds the cluster by listing the
    machine's GCS processes. With a second local instance running (another job, the test
    suite's) it raises "Found multiple active Ray instances" and the cleaner's thread dies, so a
    controller that crashed would leave its placement group behind. A cluster joined through
    ``RAY_ADDRESS`` needs no hook: its workers find ``ray start``'s address file.

    Nested so that Ray pickles it by value: workers need not import this module.
    """

    def export_address() -> None:
        import os

        import ray

        os.environ["RAY_ADDRESS"] = ray.get_runtime_context().gcs_address

    return export_address


def print_summary(report: dict, written: list[str], run: str, data: str) -> None:
    """The end of an evaluated run on the terminal: each target met or missed, the main table,
    and where every output went."""
    from p2l3d_core import storage
    from p2l3d_core.evaluation.report import summary_table

    for target in report["targets"].values():
        LOG.info("%s %s: %.2f (threshold %.2f)", "MET   " if target["met"] else "MISSED",
                 target["target"], target["value"], target["threshold"])
    where = [("dataset", data), ("models", run),
             ("report", storage.join(run, "report", "report.md")),
             ("charts", ", ".join(p.rsplit("/", 1)[-1] for p in written if p.endswith(".png"))),
             ("training report", storage.join(run, "report", "training.json"))]
    width = max(len(name) for name, _ in where)
    print("\n" + summary_table(report) + "\n\nOutputs:\n"
          + "\n".join(f"  {name.ljust(width)}  {place}" for name, place in where), flush=True)
