"""Columns of a rendered Parquet shard: the contract between rendering, training and evaluation."""

from __future__ import annotations

import pyarrow as pa

from p2l3d_core.skeleton import NUM_JOINTS

CAMERA_TYPE = pa.struct([
    ("fx", pa.float64()), ("fy", pa.float64()), ("cx", pa.float64()), ("cy", pa.float64()),
    ("R", pa.list_(pa.float64(), 9)), ("t", pa.list_(pa.float64(), 3)),
    ("width", pa.int32()), ("height", pa.int32()),
])

SCHEMA = pa.schema([
    ("pose_id", pa.string()),
    ("split", pa.string()),  # train / val / test, by a stable hash of pose_id
    ("action", pa.string()),
    ("source", pa.string()),
    ("keypoints_3d", pa.list_(pa.list_(pa.float32(), 3), NUM_JOINTS)),  # world metres, z up
    ("keypoints_2d", pa.list_(pa.list_(pa.float32(), 2), NUM_JOINTS)),  # pixels, NaN = unseen
    ("visible_2d", pa.list_(pa.bool_(), NUM_JOINTS)),
    ("camera", CAMERA_TYPE),
    ("image_2d", pa.binary()),  # PNG, RGB
    ("image_3d", pa.binary()),  # PNG, RGB, four tiled views
    ("captions", pa.list_(pa.string())),
    ("questions", pa.list_(pa.string())),
    ("answers", pa.list_(pa.string())),  # short canonical phrases
    ("answer_sentences", pa.list_(pa.string())),
    ("question_families", pa.list_(pa.string())),
    ("needs_depth", pa.list_(pa.bool_())),
])
