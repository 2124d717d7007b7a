"""Columns of a rendered Parquet shard: the contract between rendering, training and evaluation."""

from __future__ import annotations

import pyarrow as pa

from p2l3d_core.skeleton import NUM_JOINTS


class Column:
    """The names of a shard's columns, in one place: rendering writes them, training, the
    evaluation and the readers read them by these names."""

    POSE_ID = "pose_id"
    SPLIT = "split"
    ACTION = "action"
    SOURCE = "source"
    KEYPOINTS_3D = "keypoints_3d"
    KEYPOINTS_2D = "keypoints_2d"
    VISIBLE_2D = "visible_2d"
    CAMERA = "camera"
    IMAGE_2D = "image_2d"
    IMAGE_3D = "image_3d"
    CAPTIONS = "captions"
    QUESTIONS = "questions"
    ANSWERS = "answers"
    ANSWER_SENTENCES = "answer_sentences"
    QUESTION_FAMILIES = "question_families"
    NEEDS_DEPTH = "needs_depth"


CAMERA_TYPE = pa.struct([
    ("fx", pa.float64()), ("fy", pa.float64()), ("cx", pa.float64()), ("cy", pa.float64()),
    ("R", pa.list_(pa.float64(), 9)), ("t", pa.list_(pa.float64(), 3)),
    ("width", pa.int32()), ("height", pa.int32()),
])

SCHEMA = pa.schema([
    (Column.POSE_ID, pa.string()),
    (Column.SPLIT, pa.string()),  # train / val / test, by a stable hash of pose_id
    (Column.ACTION, pa.string()),
    (Column.SOURCE, pa.string()),
    (Column.KEYPOINTS_3D, pa.list_(pa.list_(pa.float32(), 3), NUM_JOINTS)),  # world metres, z up
    (Column.KEYPOINTS_2D, pa.list_(pa.list_(pa.float32(), 2), NUM_JOINTS)),  # pixels, NaN = unseen
    (Column.VISIBLE_2D, pa.list_(pa.bool_(), NUM_JOINTS)),
    (Column.CAMERA, CAMERA_TYPE),
    (Column.IMAGE_2D, pa.binary()),  # PNG, RGB
    (Column.IMAGE_3D, pa.binary()),  # PNG, RGB, four tiled views
    (Column.CAPTIONS, pa.list_(pa.string())),
    (Column.QUESTIONS, pa.list_(pa.string())),
    (Column.ANSWERS, pa.list_(pa.string())),  # short canonical phrases
    (Column.ANSWER_SENTENCES, pa.list_(pa.string())),
    (Column.QUESTION_FAMILIES, pa.list_(pa.string())),
    (Column.NEEDS_DEPTH, pa.list_(pa.bool_())),
])
