"""The rendering pipeline on Ray Data: shards of poses described and rendered in parallel.

Each shard (``shard_size`` poses) is one Ray Data batch: a ``map_batches`` task builds its poses
(from the generator or a file), describes and renders them and writes its Parquet file. Writing
inside the task, rather than with ``Dataset.write_parquet``, is what makes the job resumable and
idempotent: a shard's file name is fixed by its index, it appears atomically, and a re-run skips
the shards already there. The caller starts Ray; this module only uses it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone

import numpy as np

from p2l3d_core import storage, version
from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset import shards
from p2l3d_core.dataset.build import build_table
from p2l3d_core.dataset.schema import SCHEMA
from p2l3d_core.poses.sources import count_records, load_records


def plan(config: DatasetConfig) -> list[tuple[int, int, int]]:
    """``(shard index, first pose, pose count)`` for every shard of the dataset."""
    total = min(config.num_poses, count_records(config.source))
    n = math.ceil(total / config.shard_size)
    return [(i, i * config.shard_size, min(config.shard_size, total - i * config.shard_size))
            for i in range(n)]


def render_shard(index: int, start: int, count: int, config: DatasetConfig,
                 dataset_uri: str) -> dict:
    """Build, render and write one shard; returns its stats (the unit of work of a task)."""
    t0 = time.perf_counter()
    records = load_records(config.source, config.seed, start, count, twin_prob=config.twin_prob)
    result = build_table(records, config)
    table = shards.with_failures(result.table, result.failures)
    written = shards.write_shard(dataset_uri, index, table)
    stats = shards.shard_stats(table)
    stats.update(path=shards.shard_name(index), index=index, seconds=time.perf_counter() - t0,
                 **written)
    return stats


def _render_batch(batch: dict[str, np.ndarray], config_json: str, dataset_uri: str) -> dict:
    import ray

    config = DatasetConfig.from_dict(json.loads(config_json))
    node = ray.get_runtime_context().get_node_id()  # where it ran: the manifest records it
    out = [{**render_shard(int(i), int(s), int(c), config, dataset_uri), "node": node}
           for i, s, c in zip(batch["index"], batch["start"], batch["count"])]
    return {"stats": np.array([json.dumps(o) for o in out], dtype=object)}


class ConfigMismatch(RuntimeError):
    """The output already holds (part of) a dataset built with other arguments."""


def _guard_config(dataset_uri: str, config: DatasetConfig, overwrite: bool) -> None:
    config_uri = storage.join(dataset_uri, "_config.json")
    if storage.exists(config_uri):
        previous = storage.read_json(config_uri)
        if previous.get("fingerprint") != config.fingerprint():
            if not overwrite:
                raise ConfigMismatch(
                    f"{dataset_uri} holds a dataset built with other arguments "
                    f"({previous.get('config')}); use another --output or pass --overwrite")
            for uri in storage.list_files(storage.join(dataset_uri, "shards")):
                storage.delete(uri)
            storage.delete(storage.join(dataset_uri, "manifest.json"))
    storage.write_json(config_uri,
                       {"fingerprint": config.fingerprint(), "config": config.to_dict()})


def render_dataset(dataset_uri: str, config: DatasetConfig, *, overwrite: bool = False,
                   concurrency: int | None = None, verify: bool = False,
                   log: Callable[[str], None] = print) -> dict:
    """Render ``config`` into ``dataset_uri`` (local folder or ``s3://``) and return the manifest.

    Re-running with the same config finishes what is missing and rewrites nothing; a complete
    dataset is returned as is, once its shards are checked against the manifest: a missing or
    resized shard (with ``verify``, one whose sha256 differs) is rendered again.
    ``concurrency`` caps parallel shard tasks (default: what Ray has).
    """
    import ray.data

    dataset_uri = storage.absolute(dataset_uri)  # workers may run in another directory
    storage.ensure_bucket(dataset_uri)
    manifest_uri = storage.join(dataset_uri, "manifest.json")
    if storage.exists(manifest_uri) and not overwrite:
        manifest = shards.read_manifest(dataset_uri)
        if manifest["fingerprint"] == config.fingerprint():
            damaged = shards.damaged_shards(dataset_uri, hashes=verify)
            if not damaged:
                log(f"{dataset_uri}: already complete ({manifest['num_rows']} poses"
                    f"{', every shard verified' if verify else ''}), nothing to do")
                return manifest
            for uri, why in damaged.items():
                log(f"  damaged shard {uri} ({why}): rendering it again")
                if storage.exists(uri):
                    storage.delete(uri)
            storage.delete(manifest_uri)
    all_shards = plan(config)  # reads a file source first: a bad file fails before any write
    _guard_config(dataset_uri, config, overwrite)
    done = shards.completed_shards(dataset_uri)
    todo = [s for s in all_shards if s[0] not in done]
    stats = {i: shards.read_shard_stats(dataset_uri, i) for i, _, _ in all_shards if i in done}
    total = sum(c for _, _, c in all_shards)
    log(f"rendering {total} poses in {len(all_shards)} shards to {dataset_uri} "
        f"({len(done)} shards already done, {len(todo)} to go)")

    t0, rendered = time.perf_counter(), 0
    if todo:
        ray.data.DataContext.get_current().enable_progress_bars = False
        # S3 settings of the driver travel to the workers, so every task sees the same store.
        runtime_env = storage.worker_runtime_env() if storage.is_s3(dataset_uri) else {}
        remote_args = {"runtime_env": runtime_env} if runtime_env else {}
        items = [{"index": i, "start": s, "count": c} for i, s, c in todo]
        ds = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _render_batch, batch_size=1, concurrency=concurrency,
            **remote_args,
            fn_kwargs={"config_json": json.dumps(config.to_dict()), "dataset_uri": dataset_uri})
        for row in ds.iter_rows():
            s = json.loads(row["stats"])
            stats[s["index"]] = s
            rendered += s["rows"] + len(s["failures"])
            rate = rendered / max(time.perf_counter() - t0, 1e-9)
            eta = (sum(c for _, _, c in todo) - rendered) / max(rate, 1e-9)
            log(f"  shard {len(stats)}/{len(all_shards)}: {s['path']} {s['rows']} poses, "
                f"{len(s['failures'])} failed, on node {s['node'][:8]} | {rate:,.0f} poses/s, "
                f"ETA {eta:,.0f} s")

    merged = shards.merge_stats(stats)
    manifest = {
        "format": shards.FORMAT,
        "config": config.to_dict(),
        "fingerprint": config.fingerprint(),
        "code_version": version.code_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "columns": SCHEMA.names,
        "shards": [{"path": shards.shard_name(i), "rows": stats[i]["rows"],
                    "bytes": stats[i]["bytes"], "sha256": stats[i]["sha256"],
                    "splits": stats[i]["splits"], "node": stats[i].get("node")}
                   for i, _, _ in all_shards],
        **merged,
    }
    storage.write_json(manifest_uri, manifest)
    nodes = {s["node"] for s in manifest["shards"] if s["node"]}
    log(f"done: {merged['num_rows']} poses ({merged['splits']}), {len(merged['failures'])} failed, "
        f"in {time.perf_counter() - t0:,.1f} s on {len(nodes)} node(s) -> {manifest_uri}")
    return manifest
