import io

import numpy as np
import pyarrow.parquet as pq

from p2l3d_core.config import DatasetConfig, SplitFractions
from p2l3d_core.dataset.build import build_table, split_of
from p2l3d_core.dataset.schema import SCHEMA
from p2l3d_core.poses.generator import generate_records
from p2l3d_core.render import decode_png


def test_split_is_stable_and_follows_the_fractions():
    f = SplitFractions()
    ids = [f"syn-0-{i:08d}" for i in range(4000)]
    splits = [split_of(i, f) for i in ids]
    assert splits == [split_of(i, f) for i in ids]
    share = {s: splits.count(s) / len(ids) for s in ("train", "val", "test")}
    assert abs(share["train"] - 0.8) < 0.03 and abs(share["test"] - 0.1) < 0.03


def test_build_table_has_every_column_and_real_content():
    config = DatasetConfig(num_poses=20, image_size=64)
    records = generate_records(0, 0, 20)
    result = build_table(records, config)
    table = result.table
    assert table.schema.equals(SCHEMA) and table.num_rows == 20 and not result.failures
    row = table.slice(0, 1).to_pylist()[0]
    assert decode_png(row["image_2d"]).shape == (64, 64, 3)
    assert decode_png(row["image_3d"]).shape == (64, 64, 3)
    assert len(row["captions"]) == config.num_captions and all(row["captions"])
    assert len(row["questions"]) == len(row["answers"]) == len(row["needs_depth"]) > 0
    assert any(any(r) for r in table.column("needs_depth").to_pylist())
    kp3 = np.array(row["keypoints_3d"])
    assert kp3.shape == (17, 3) and np.allclose(kp3, records[0].joints_3d, atol=1e-6)
    buf = io.BytesIO()
    pq.write_table(table, buf)  # the table is writable as Parquet as is


def test_build_is_deterministic():
    config = DatasetConfig(num_poses=8, image_size=64)
    a = build_table(generate_records(1, 0, 8), config).table
    b = build_table(generate_records(1, 0, 8), config).table
    assert a.equals(b)


def test_bad_pose_is_recorded_and_the_rest_is_kept():
    records = generate_records(0, 0, 5)
    records[2].joints_3d = np.full((17, 3), np.nan)
    records[3].joints_3d = np.zeros((12, 3))
    result = build_table(records, DatasetConfig(num_poses=5, image_size=64))
    assert result.table.num_rows == 3
    reasons = dict(result.failures)
    assert "pelvis is missing" in reasons[records[2].pose_id]
    assert "shape (12, 3)" in reasons[records[3].pose_id]
