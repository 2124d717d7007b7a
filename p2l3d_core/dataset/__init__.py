"""Rendered datasets: building rows, shard files and manifests, the Ray Data pipeline."""

from p2l3d_core.dataset.shards import load_table, read_manifest, shard_uris

__all__ = ["load_table", "read_manifest", "shard_uris"]
