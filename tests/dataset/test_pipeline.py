"""The Ray Data rendering pipeline on a local Ray instance, on local disk and on S3 (moto)."""

import json

import pytest

from p2l3d_core import storage
from p2l3d_core.config import DatasetConfig
from p2l3d_core.dataset import load_table, read_manifest, shard_uris
from p2l3d_core.dataset.pipeline import ConfigMismatch, render_dataset
from p2l3d_core.dataset.shards import shard_name, training_splits

pytestmark = pytest.mark.slow
SMALL = DatasetConfig(num_poses=90, image_size=64, shard_size=25, seed=3)


def test_renders_shards_and_manifest(ray_local, tmp_path):
    out = str(tmp_path / "ds")
    manifest = render_dataset(out, SMALL, log=lambda m: None)
    assert manifest["num_rows"] == 90 and len(manifest["shards"]) == 4
    assert (sum(manifest["splits"].values()) == 90
            and set(manifest["splits"]) <= {"train", "val", "test"})
    assert sum(manifest["actions"].values()) == 90 and len(manifest["actions"]) >= 15
    assert manifest["config"]["num_poses"] == 90 and manifest["code_version"]
    table = load_table(out)
    assert table.num_rows == 90 and len(set(table.column("pose_id").to_pylist())) == 90
    assert load_table(out, split="train").num_rows == manifest["splits"]["train"]


def test_rerun_is_idempotent_and_resumes_after_a_crash(ray_local, tmp_path):
    out = str(tmp_path / "ds")
    render_dataset(out, SMALL, log=lambda m: None)
    first = {u: storage.read_bytes(u) for u in shard_uris(out)}

    # Simulate a job killed midway: one shard missing, a half-written temp file, no manifest.
    storage.delete(storage.join(out, shard_name(2)))
    storage.delete(storage.join(out, "manifest.json"))
    (tmp_path / "ds" / "shards"
     / f"part-00002.parquet{storage.TMP_MARKER}dead").write_bytes(b"PAR1junk")
    with pytest.raises(FileNotFoundError, match="has not finished"):
        read_manifest(out)

    logs = []
    manifest = render_dataset(out, SMALL, log=logs.append)
    assert any("3 shards already done, 1 to go" in m for m in logs)
    assert manifest["num_rows"] == 90
    assert {u: storage.read_bytes(u) for u in shard_uris(out)} == first  # same bytes again
    assert sorted(p.name for p in (tmp_path / "ds" / "shards").iterdir()) == [
        f"part-0000{i}.parquet" for i in range(4)]

    logs.clear()
    render_dataset(out, SMALL, log=logs.append)
    assert any("already complete" in m for m in logs)


def test_other_arguments_into_the_same_output_are_refused(ray_local, tmp_path):
    out = str(tmp_path / "ds")
    render_dataset(out, SMALL, log=lambda m: None)
    other = DatasetConfig(num_poses=30, image_size=64, shard_size=25, seed=4)
    with pytest.raises(ConfigMismatch, match="--overwrite"):
        render_dataset(out, other, log=lambda m: None)
    manifest = render_dataset(out, other, overwrite=True, log=lambda m: None)
    assert manifest["num_rows"] == 30 and len(shard_uris(out)) == 2
    assert json.loads(storage.read_bytes(storage.join(out, "_config.json")))["config"]["seed"] == 4


def test_renders_to_s3(ray_local, s3_bucket):
    out = f"{s3_bucket}/datasets/small"
    manifest = render_dataset(out, SMALL, log=lambda m: None)
    assert manifest["num_rows"] == 90
    assert all(u.startswith("s3://") for u in shard_uris(out))
    assert load_table(out).num_rows == 90
    logs = []
    render_dataset(out, SMALL, log=logs.append)
    assert any("already complete" in m for m in logs)
    # What the training jobs read: train and val, read from S3 once and held by Ray.
    from ray.data.dataset import MaterializedDataset

    splits = training_splits(out, columns=["pose_id", "split"])
    assert set(splits) == {"train", "val"}
    for name, ds in splits.items():
        assert isinstance(ds, MaterializedDataset)
        assert ds.count() == manifest["splits"][name] and set(ds.unique("split")) == {name}


def test_missing_bucket_is_named(ray_local, s3_server):
    with pytest.raises(FileNotFoundError, match="no-such-bucket"):
        render_dataset("s3://no-such-bucket/x", SMALL, log=lambda m: None)


def test_unreadable_source_fails_before_writing_anything(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip archive")
    out = tmp_path / "ds"
    with pytest.raises(ValueError, match="cannot be read"):
        render_dataset(str(out), DatasetConfig(num_poses=10, source=f"h36m:{bad}"),
                       log=lambda m: None)
    assert not out.exists()  # no _config.json left to block a corrected re-run
